"""`gateway.kinds`: the catalogue's 37 tags, typed kinds that the protos really type, and the
README's "Job kinds" table in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from gateway._proto import media_pb2
from gateway.kinds import DEFAULT_TAG, KINDS, kind
from gateway.upstream.xml_codec import typed_field_for

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()

# The job catalogue's §1.1 "Full Tag list", in its order (/work/shared/ci-job-catalogue.md).
CATALOGUE_TAGS = [
    "MediaInfo",
    "Transcode",
    "Snapshot",
    "Animation",
    "Concat",
    "Segment",
    "SmartCover",
    "VoiceSeparate",
    "VideoMontage",
    "Watermark",
    "DigitalWatermark",
    "ExtractDigitalWatermark",
    "StreamExtract",
    "SDRtoHDR",
    "VideoProcess",
    "SuperResolution",
    "VideoEnhance",
    "QualityEstimate",
    "VideoTag",
    "Tts",
    "SpeechRecognition",
    "NoiseReduction",
    "SoundHound",
    "VocalScore",
    "Translation",
    "WordsGeneralize",
    "VideoTargetRec",
    "SegmentVideoBody",
    "SplitVideoParts",
    "FillConcat",
    "VideoSynthesis",
    "GeneratePlayList",
    "DNA",
    "PicProcess",
    "PosterProduction",
    "ImageInspect",
    "ImageOCR",
]
# Catalogue §5.1 tier 1, plus MediaInfo: the kinds issue 13 types.
TYPED = [
    "MediaInfo",
    "Transcode",
    "Snapshot",
    "Animation",
    "Concat",
    "Segment",
    "SmartCover",
    "VoiceSeparate",
    "VideoMontage",
    "Watermark",
    "DigitalWatermark",
    "ExtractDigitalWatermark",
    "StreamExtract",
    "SDRtoHDR",
    "VideoProcess",
    "SuperResolution",
    "VideoEnhance",
]


def test_the_catalogues_tags_in_its_order() -> None:
    assert list(KINDS) == CATALOGUE_TAGS
    assert len(KINDS) == 37


def test_typed_kinds_are_tier_one() -> None:
    assert {tag for tag, k in KINDS.items() if k.typed} == set(TYPED)


def test_a_typed_kinds_nodes_are_typed_fields_of_operation() -> None:
    operation = media_pb2.Operation()
    for k in KINDS.values():
        if k.typed:
            for node in k.nodes:
                assert typed_field_for(operation, node) is not None, (k.tag, node)


def test_tags_match_exactly() -> None:
    assert kind("SDRtoHDR") is not None
    assert kind("SdrToHdr") is None and kind("transcode") is None and kind("") is None
    assert DEFAULT_TAG in KINDS


def test_readme_table_matches_the_code() -> None:
    table = README.split("<!-- job-kinds:start")[1].split("<!-- job-kinds:end")[0]
    rows = re.findall(r"^\| `(\w+)` \| (typed|pass-through) \| (.*?) \| (.*) \|$", table, re.M)
    documented = {
        tag: (kind_ == "typed", tuple(re.findall(r"`(\w+)`", nodes)), what)
        for tag, kind_, nodes, what in rows
    }
    in_code = {tag: (k.typed, k.nodes, k.what) for tag, k in KINDS.items()}
    assert documented == in_code
    assert [row[0] for row in rows] == list(KINDS)
