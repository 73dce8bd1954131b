"""The relay's handling of a camera's H.264: whole pictures, and SPS/PPS before every keyframe."""

from __future__ import annotations

from agent.rtc.relay import ParameterSets, PictureAssembler, nal_units, parameter_sets

SPS = b"\x67\x42\xc0\x1e\xda"
PPS = b"\x68\xce\x3c\x80"
AUD = b"\x09\xf0"
IDR = b"\x65\x88\x84\x00\x33"
IDR_SECOND_SLICE = b"\x65\x00\x11\x22"
P_SLICE = b"\x41\x9a\x20\x11"


def annexb(*units: bytes, long_codes: bool = True) -> bytes:
    code = b"\x00\x00\x00\x01" if long_codes else b"\x00\x00\x01"
    return b"".join(code + unit for unit in units)


def test_nal_units_reads_both_start_code_lengths() -> None:
    data = annexb(AUD, SPS) + annexb(PPS, IDR, long_codes=False)
    assert [(kind, unit) for kind, unit in nal_units(data)] == [
        (9, AUD),
        (7, SPS),
        (8, PPS),
        (5, IDR),
    ]
    assert parameter_sets(data) == annexb(SPS, PPS)
    assert parameter_sets(b"\x01\x42\xc0\x1e") == b""  # avcC extradata: nothing in Annex B


def test_an_idr_picture_cut_in_two_packets_goes_out_whole() -> None:
    assembler = PictureAssembler()
    first = annexb(AUD, SPS, PPS, IDR)
    second = annexb(SPS, PPS, IDR_SECOND_SLICE)  # the parser split it at the repeated SPS
    following = annexb(AUD, P_SLICE)
    assert list(assembler.add(first, 9000)) == []  # held: more of it may follow
    assert list(assembler.add(second, 9000)) == []
    assert list(assembler.add(following, 15000)) == [(first + second, 9000), (following, 15000)]


def test_the_streams_first_packet_without_a_timestamp_joins_the_next_part() -> None:
    assembler = PictureAssembler()
    first = annexb(AUD, SPS, PPS, IDR)
    second = annexb(SPS, PPS, IDR_SECOND_SLICE)
    assert list(assembler.add(first, None)) == []
    assert list(assembler.add(second, 0)) == []
    following = annexb(AUD, P_SLICE)
    assert list(assembler.add(following, 6000)) == [(first + second, 0), (following, 6000)]


def test_predicted_pictures_pass_at_once_and_untimed_ones_are_dropped() -> None:
    assembler = PictureAssembler()
    assert list(assembler.add(annexb(P_SLICE), 3000)) == [(annexb(P_SLICE), 3000)]
    assert list(assembler.add(annexb(P_SLICE), None)) == []


def test_keyframes_without_parameter_sets_get_them() -> None:
    from_description = ParameterSets(annexb(SPS, PPS))
    bare = annexb(IDR)
    data, keyframe = from_description.prepare(bare)
    assert keyframe and data == annexb(SPS, PPS) + bare

    in_band = annexb(SPS + b"\x01", PPS, IDR)  # the camera's own, newer than the description
    assert from_description.prepare(in_band) == (in_band, True)
    data, keyframe = from_description.prepare(bare)
    assert keyframe and data == annexb(SPS + b"\x01", PPS) + bare

    assert from_description.prepare(annexb(P_SLICE)) == (annexb(P_SLICE), False)


def test_a_keyframe_nobody_can_decode_is_not_a_start() -> None:
    unknown = ParameterSets()
    assert unknown.prepare(annexb(IDR)) == (annexb(IDR), False)
