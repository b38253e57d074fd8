# Sourced by scripts/demo and scripts/test: create or reuse .venv and install the project.
# Reinstalls only when pyproject.toml changed, so the second run starts in a second or two.

pick_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Sealpost needs Python 3.11 or newer; none found (set PYTHON=/path/to/python3.11)." >&2
  return 1
}

ensure_venv() {  # $1: the pip requirement to install, e.g. "." or ".[test]"
  local spec="$1" python stamp want
  if [ ! -x .venv/bin/python ]; then
    python=$(pick_python) || exit 1
    echo "==> creating .venv with $python"
    "$python" -m venv .venv || {
      echo "error: could not create a virtual environment; on Debian/Ubuntu install python3-venv." >&2
      exit 1
    }
  fi
  stamp=".venv/.sealpost-installed"
  want="$spec $(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
  if ! grep -qxF "$want" "$stamp" 2>/dev/null; then
    echo "==> installing sealpost $spec into .venv (versions from constraints.txt)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    # The versions CI ran with; a Python too new for one of them falls back to the newest
    # that pyproject.toml allows (and says so), rather than failing the quick start.
    if ! .venv/bin/python -m pip install --quiet -e "$spec" -c constraints.txt; then
      echo "warning: the pinned versions (constraints.txt) do not install here; installing the newest allowed" >&2
      .venv/bin/python -m pip install --quiet -e "$spec"
    fi
    # Several specs may be installed in turn (demo, then test); remember each.
    echo "$want" >> "$stamp"
  fi
}
