"""A send time as people write it, the same in the app's form and the console's --at."""

from datetime import datetime

import pytest

from client.business.send_time import parse_send_at


@pytest.mark.parametrize("text", ["now", "NOW", " Now ", "", None])
def test_now_or_nothing_means_at_once(text):
    assert parse_send_at(text) is None


def test_an_iso_time_is_local_unless_it_names_its_zone():
    assert parse_send_at("2026-12-01T09:00+01:00") == 1_796_112_000_000
    local = datetime(2026, 12, 1, 9, 0).astimezone()
    assert parse_send_at("2026-12-01T09:00") == int(local.timestamp() * 1000)


@pytest.mark.parametrize("text", ["tomorrow", "9am", "2026-13-01"])
def test_anything_else_says_what_to_write(text):
    with pytest.raises(ValueError, match=r"write now, or e\.g\. 2026-12-01T09:00"):
        parse_send_at(text)
