"""Write tests/vectors/tokens.json: fixed test vectors for shared.tokens.

Run from the repository root: ``python tests/vectors/make_token_vectors.py``. The RFC sections are
copied from RFC 9496 (appendix A) and RFC 9497 (appendix A.1.2) and checked by the tests, not
produced here; the "sealpost" section and the failing cases are computed with shared.tokens
using fixed (not random) blinds and proof nonces, so they pin today's behaviour as regression
vectors. Rerunning the script must leave the file unchanged.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

from shared import tokens

OUT = Path(__file__).with_name("tokens.json")

# RFC 9496 appendix A.1: encodings of 0*B .. 15*B.
SMALL_MULTIPLES = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
    "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
    "94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
    "da80862773358b466ffadfe0b3293ab3d9fd53c5ea6c955358f568322daf6a57",
    "e882b131016b52c1d3337080187cf768423efccbb517bb495ab812c4160ff44e",
    "f64746d3c92b13050ed8d80236a7f0007c3b3f962f5ba793d19a601ebb1df403",
    "44f53520926ec81fbd5a387845beb7df85a96a24ece18738bdcfa6a7822a176d",
    "903293d8f2287ebe10e2374dc1a53e0bc887e592699f02d077d5263cdd55601c",
    "02622ace8f7303a31cafc63f8fc48fdc16e1c8c8d234b2f0d6685282a9076031",
    "20706fd788b2720a1ed2a5dad4952b01f413bcf0e7564de8cdc816689e2db95f",
    "bce83f8ba5dd2fa572864c24ba1810f9522bc6004afe95877ac73241cafdab42",
    "e4549ee16b9aa03099ca208c67adafcafa4c3f3e4e5303de6026e3ca8ff84460",
    "aa52e000df2e16f55fb1032fc33bc42742dad6bd5a8fc0be0167436c5948501f",
    "46376b80f409b29dc2b5f6f0c52591990896e5716f41477cd30085ab7f10301e",
    "e0c418f7c8d9c4cdd7395b93ea124f3ad99021bb681dfc3302a9d99a2e53e64e",
]

# RFC 9496 appendix A.2: invalid encodings (non-canonical, negative, non-square x^2, negative
# xy, and s = -1).
BAD_ENCODINGS = [
    "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
    "c34c4e1826e5d403b78e246e88aa051c36ccf0aafebffe137d148a2bf9104562",
    "c940e5a4404157cfb1628b108db051a8d439e1a421394ec4ebccb9ec92a8ac78",
    "47cfc5497c53dc8e61c91d17fd626ffb1c49e2bca94eed052281b510b1117a24",
    "f1c6165d33367351b0da8f6e4511010c68174a03b6581212c71c0e1d026c3c72",
    "87260f7a2f12495118360f02c26a470f450dadf34a413d21042b43b9d93e1309",
    "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
    "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
    "de6a7b00deadc788eb6b6c8d20c0ae96c2f2019078fa604fee5b87d6e989ad7b",
    "bcab477be20861e01e4a0e295284146a510150d9817763caf1a6f4b422d67042",
    "2a292df7e32cababbd9de088d1d1abec9fc0440f637ed2fba145094dc14bea08",
    "f4a9e534fc0d216c44b218fa0c42d99635a0127ee2e53c712f70609649fdff22",
    "8268436f8c4126196cf64b3c7ddbda90746a378625f9813dd9b8457077256731",
    "2810e5cbc2cc4d4eece54f61c6f69758e289aa7ab440b3cbeaa21995c2f4232b",
    "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
    "a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
    "d483fe813c6ba647ebbfd3ec41adca1c6130c2beeee9d9bf065c8d151c5f396e",
    "8a2e1d30050198c65a54483123960ccc38aef6848e1ec8f5f780e8523769ba32",
    "32888462f8b486c68ad7dd9610be5192bbeaf3b443951ac1a8118419d9fa097b",
    "227142501b9d4355ccba290404bde41575b037693cef1f438c47f8fbf35d1165",
    "5c37cc491da847cfeb9281d407efc41e15144c876e0170b499a96a22ed31e01e",
    "445425117cb8c90edcbc7c1cc0e74f747f2c1efa5630a967c64f287792a48a4b",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]

# RFC 9496 appendix A.3: the element derivation (one-way map) of SHA-512(label).
ONE_WAY_MAP = [
    (
        "Ristretto is traditionally a short shot of espresso coffee",
        "3066f82a1a747d45120d1740f14358531a8f04bbffe6a819f86dfe50f44a0a46",
    ),
    (
        "made with the normal amount of ground coffee but extracted with",
        "f26e5b6f7d362d2d2a94c5d0e7602cb4773c95a2e5c31a64f133189fa76ed61b",
    ),
    (
        "about half the amount of water in the same amount of time",
        "006ccd2a9e6867e6a2c5cea83d3302cc9de128dd2a9a57dd8ee7b9d7ffe02826",
    ),
    (
        "by using a finer grind.",
        "f8f0c87cf237953c5890aec3998169005dae3eca1fbb04548c635953c817f92a",
    ),
    (
        "This produces a concentrated shot of coffee per volume.",
        "ae81e7dedf20a497e10c304a765c1767a42d6e06029758d2d7e8ef7cc4c41179",
    ),
    (
        "Just pulling a normal shot short will produce a weaker shot",
        "e2705652ff9f5e44d3e841bf1c251cf7dddb77d140870d1ab2ed64f1a9ce8628",
    ),
    (
        "and is not a Ristretto as some believe.",
        "80bd07262511cdde4863f8a7434cef696750681cb9510eea557088f76d9e5065",
    ),
]

# RFC 9497 appendix A.1.2: OPRF(ristretto255, SHA-512), VOPRF mode.
_B1 = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706"
_B2 = "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e"
_B3 = "419c4f4f5052c53c45f3da494d2b67b220d02118e0857cdbcf037f9ea84bbe0c"
_OUT1 = (
    "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7d"
    "a4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c"
)
_OUT2 = (
    "8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60"
    "356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6"
)
RFC9497_VOPRF = {
    "source": "RFC 9497 appendix A.1.2, OPRF(ristretto255, SHA-512), VOPRF mode (copied)",
    "seed": "a3" * 32,
    "key_info": "74657374206b6579",
    "sk": "e6f73f344b79b379f1a0dd37e07ff62e38d9f71345ce62ae3a9bc60b04ccd909",
    "pk": "c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e",
    "vectors": [
        {
            "inputs": ["00"],
            "blinds": [_B1],
            "blinded_elements": [
                "863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945"
            ],
            "evaluated_elements": [
                "aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e"
            ],
            "proof": "ddef93772692e535d1a53903db24367355cc2cc78de93b3be5a8ffcc6985dd06"
            "6d4346421d17bf5117a2a1ff0fcb2a759f58a539dfbe857a40bce4cf49ec600d",
            "proof_random_scalar": _B2,
            "outputs": [_OUT1],
        },
        {
            "inputs": ["5a" * 17],
            "blinds": [_B1],
            "blinded_elements": [
                "cc0b2a350101881d8a4cba4c80241d74fb7dcbfde4a61fde2f91443c2bf9ef0c"
            ],
            "evaluated_elements": [
                "60a59a57208d48aca71e9e850d22674b611f752bed48b36f7a91b372bd7ad468"
            ],
            "proof": "401a0da6264f8cf45bb2f5264bc31e109155600babb3cd4e5af7d181a2c9dc0a"
            "67154fabf031fd936051dec80b0b6ae29c9503493dde7393b722eafdf5a50b02",
            "proof_random_scalar": _B2,
            "outputs": [_OUT2],
        },
        {
            "inputs": ["00", "5a" * 17],
            "blinds": [_B1, _B2],
            "blinded_elements": [
                "863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
                "90a0145ea9da29254c3a56be4fe185465ebb3bf2a1801f7124bbbadac751e654",
            ],
            "evaluated_elements": [
                "aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
                "cc5ac221950a49ceaa73c8db41b82c20372a4c8d63e5dded2db920b7eee36a2a",
            ],
            "proof": "cc203910175d786927eeb44ea847328047892ddf8590e723c37205cb74600b0a"
            "5ab5337c8eb4ceae0494c2cf89529dcf94572ed267473d567aeed6ab873dee08",
            "proof_random_scalar": _B3,
            "outputs": [_OUT1, _OUT2],
        },
    ],
}


def _fixed_scalar(label: str) -> bytes:
    """A deterministic non-random scalar: only for vectors, never for real tokens."""
    digest = hashlib.sha512(b"sealpost test vector scalar\x00" + label.encode()).digest()
    return (int.from_bytes(digest, "little") % tokens._L).to_bytes(32, "little")


def _fixed_bytes(label: str, n: int = 32) -> bytes:
    return hashlib.sha512(b"sealpost test vector bytes\x00" + label.encode()).digest()[:n]


def _run(key: tokens.IssuerKey, inputs: list[bytes], tag: str) -> dict[str, Any]:
    blinds, blinded = [], []
    for i, token_input in enumerate(inputs):
        b, e = tokens.blind(token_input, blind_scalar=_fixed_scalar(f"{tag} blind {i}"))
        blinds.append(b)
        blinded.append(e)
    nonce = _fixed_scalar(f"{tag} proof")
    evaluated, proof = tokens.evaluate(key, blinded, proof_scalar=nonce)
    outputs = tokens.finalize_batch(inputs, blinds, blinded, evaluated, proof, key.public_key)
    return {
        "inputs": [x.hex() for x in inputs],
        "blinds": [x.hex() for x in blinds],
        "blinded_elements": [x.hex() for x in blinded],
        "evaluated_elements": [x.hex() for x in evaluated],
        "proof": proof.hex(),
        "proof_random_scalar": nonce.hex(),
        "outputs": [x.hex() for x in outputs],
    }


def _flip(hex_value: str, byte: int = 0) -> str:
    raw = bytearray(bytes.fromhex(hex_value))
    raw[byte] ^= 0x01
    return raw.hex()


def build() -> dict[str, object]:
    master = _fixed_bytes("master secret")
    label = "campaign:spring-sale"
    key = tokens.IssuerKey.derive(master, label)
    other = tokens.IssuerKey.derive(master, "campaign:other")
    single = _run(key, [_fixed_bytes("input 0")], "single")
    batch = _run(key, [_fixed_bytes("input 1"), _fixed_bytes("input 2")], "batch")
    # The relay evaluates this person with a key of its own and proves that one honestly.
    tagged = _run(other, [_fixed_bytes("input 0")], "single")

    pk = key.public_key.hex()
    b1, e1, proof1 = single["blinded_elements"], single["evaluated_elements"], single["proof"]
    c, s = proof1[:64], proof1[64:]
    s_plus_l = (int.from_bytes(bytes.fromhex(s), "little") + tokens._L).to_bytes(32, "little")
    b2, e2, proof2 = batch["blinded_elements"], batch["evaluated_elements"], batch["proof"]
    token_input, token_output = single["inputs"][0], single["outputs"][0]

    def proof_case(name: str, why: str, **fields: object) -> dict[str, object]:
        case: dict[str, object] = {
            "name": name,
            "check": "proof",
            "why": why,
            "public_key": pk,
            "blinded_elements": b1,
            "evaluated_elements": e1,
            "proof": proof1,
        }
        case.update(fields)
        return case

    def token_case(name: str, why: str, **fields: object) -> dict[str, object]:
        case: dict[str, object] = {
            "name": name,
            "check": "token",
            "why": why,
            "sk": key.to_bytes().hex(),
            "input": token_input,
            "output": token_output,
        }
        case.update(fields)
        return case

    failing = [
        proof_case(
            "wrong_key",
            "a valid proof for another key checked against the published key (per-person key)",
            evaluated_elements=tagged["evaluated_elements"],
            proof=tagged["proof"],
        ),
        proof_case(
            "right_proof_wrong_public_key",
            "the genuine proof checked against another campaign's public key",
            public_key=other.public_key.hex(),
        ),
        proof_case("tampered_proof_c", "one bit of c flipped", proof=_flip(c) + s),
        proof_case("tampered_proof_s", "one bit of s flipped", proof=c + _flip(s)),
        proof_case("proof_s_not_canonical", "s + L: same value mod L", proof=c + s_plus_l.hex()),
        proof_case("proof_truncated", "63 bytes", proof=proof1[:-2]),
        proof_case(
            "tampered_evaluated_element",
            "a valid element from another key in place of the evaluation",
            evaluated_elements=tagged["evaluated_elements"],
        ),
        proof_case(
            "evaluated_element_invalid",
            "not a ristretto255 encoding (RFC 9496 non-square x^2)",
            evaluated_elements=[BAD_ENCODINGS[12]],
        ),
        proof_case("evaluated_element_identity", "the identity", evaluated_elements=["00" * 32]),
        proof_case(
            "blinded_element_substituted",
            "the proof is for a different blinded element",
            blinded_elements=[b2[0]],
        ),
        proof_case(
            "batch_swapped",
            "batch evaluations returned in the other order",
            blinded_elements=b2,
            evaluated_elements=[e2[1], e2[0]],
            proof=proof2,
        ),
        proof_case(
            "batch_dropped",
            "one element of a batch proof left out",
            blinded_elements=b2[:1],
            evaluated_elements=e2[:1],
            proof=proof2,
        ),
        token_case("wrong_output", "one bit of the output flipped", output=_flip(token_output)),
        token_case("wrong_input", "a genuine output with another input", input=_flip(token_input)),
        token_case(
            "wrong_campaign",
            "a genuine token checked with another campaign's key",
            sk=other.to_bytes().hex(),
        ),
        token_case(
            "forged", "an output made up without the key", output=_fixed_bytes("forged", 64).hex()
        ),
        token_case("truncated_output", "32 bytes of a genuine output", output=token_output[:64]),
        {
            "name": "evaluate_identity",
            "check": "evaluate",
            "why": "the issuer must refuse the identity",
            "sk": key.to_bytes().hex(),
            "blinded_elements": ["00" * 32],
        },
        {
            "name": "evaluate_bad_encoding",
            "check": "evaluate",
            "why": "the issuer must refuse a non-canonical encoding",
            "sk": key.to_bytes().hex(),
            "blinded_elements": [BAD_ENCODINGS[0]],
        },
        {"name": "key_zero", "check": "key", "why": "zero secret", "sk": "00" * 32},
        {
            "name": "key_not_canonical",
            "check": "key",
            "why": "the group order L itself",
            "sk": tokens._L.to_bytes(32, "little").hex(),
        },
    ]
    return {
        "description": (
            "Test vectors for shared/tokens.py, a VOPRF per RFC 9497 OPRF(ristretto255, SHA-512). "
            "Hex strings. 'ristretto255' and 'rfc9497_voprf' are copied from the RFCs; "
            "'sealpost' and 'failing' are self-generated by make_token_vectors.py with fixed "
            "(deterministic) blinds and proof nonces. Every 'failing' case must be rejected."
        ),
        "context_string": tokens.CONTEXT_STRING.hex(),
        "ristretto255": {
            "source": "RFC 9496 appendix A (copied)",
            "small_multiples": SMALL_MULTIPLES,
            "bad_encodings": BAD_ENCODINGS,
            "one_way_map": [{"label": lbl, "element": el} for lbl, el in ONE_WAY_MAP],
        },
        "rfc9497_voprf": RFC9497_VOPRF,
        "sealpost": {
            "source": "self-generated with fixed randomness",
            "master_secret": master.hex(),
            "label": label,
            "sk": key.to_bytes().hex(),
            "pk": pk,
            "vectors": [single, batch],
        },
        "failing": failing,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUT}")
