"""The job kinds (`Tag`s) the gateway accepts, and which of them the protos type.

One table, because several places ask the same questions about a tag: validation (is it a CI
job kind at all? may its parameters be checked structurally?), the README's "Job kinds" table
(a test compares them), and later per-kind access policy. The list is the union of Tencent's
SDK examples (job catalogue §1.1, 37 tags); CI publishes no enumeration of its own, so a tag
outside it is refused rather than sent on a guess.

A *typed* kind has Protobuf messages for its parameters (`Operation.transcode`, ...): the
gateway can check them before CI does. A *pass-through* kind is carried losslessly in
`extra_nodes` (`XmlNode` trees) both ways; its nodes are listed here for the README only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_TAG", "KINDS", "JobKind", "kind"]

DEFAULT_TAG = "MediaInfo"
"""The tag of a submit or listing that names none (v1's only kind)."""


@dataclass(frozen=True, slots=True)
class JobKind:
    tag: str
    typed: bool
    # The kind's own nodes under `Operation`, as CI names them (catalogue §1.1); for a typed
    # kind each is a typed field of `Operation` (a test checks it).
    nodes: tuple[str, ...]
    what: str


_ALL = (
    JobKind("MediaInfo", True, (), "probe the input (result: MediaInfo)"),
    JobKind(
        "Transcode",
        True,
        ("Transcode", "Watermark", "RemoveWatermark", "DigitalWatermark", "Subtitles"),
        "transcode, with watermarks, subtitles, logo removal",
    ),
    JobKind("Snapshot", True, ("Snapshot",), "frame capture, sprite sheets"),
    JobKind("Animation", True, ("Animation",), "video to GIF/WebP"),
    JobKind("Concat", True, ("ConcatTemplate",), "splice clips"),
    JobKind("Segment", True, ("Segment",), "remux or cut into segments, HLS/DASH"),
    JobKind("SmartCover", True, ("SmartCover",), "smart thumbnails"),
    JobKind("VoiceSeparate", True, ("VoiceSeparate",), "vocals / accompaniment split"),
    JobKind("VideoMontage", True, ("VideoMontage",), "highlights reel"),
    JobKind("Watermark", True, ("Watermark",), "visible watermark"),
    JobKind("DigitalWatermark", True, ("DigitalWatermark",), "embed an invisible watermark"),
    JobKind(
        "ExtractDigitalWatermark",
        True,
        ("ExtractDigitalWatermark",),
        "extract an invisible watermark",
    ),
    JobKind("StreamExtract", True, ("Output",), "demux streams to files (Output.StreamExtract)"),
    JobKind("SDRtoHDR", True, ("SDRtoHDR", "Transcode"), "SDR to HDR"),
    JobKind("VideoProcess", True, ("VideoProcess", "Transcode"), "colour enhance, sharpen"),
    JobKind("SuperResolution", True, ("SuperResolution", "Transcode"), "super resolution"),
    JobKind("VideoEnhance", True, ("VideoEnhance",), "combined enhancement"),
    JobKind("QualityEstimate", False, ("QualityEstimateConfig",), "quality score"),
    JobKind("VideoTag", False, ("VideoTag",), "video labelling"),
    JobKind("Tts", False, ("TtsTpl", "TtsConfig"), "text to speech"),
    JobKind("SpeechRecognition", False, ("SpeechRecognition",), "speech recognition"),
    JobKind("NoiseReduction", False, ("NoiseReduction",), "audio denoise"),
    JobKind("SoundHound", False, (), "song recognition"),
    JobKind("VocalScore", False, ("VocalScore",), "singing score"),
    JobKind("Translation", False, ("Translation",), "text translation"),
    JobKind("WordsGeneralize", False, ("WordsGeneralize",), "entities / word segmentation"),
    JobKind("VideoTargetRec", False, ("VideoTargetRec",), "body/pet/car/face/plate detection"),
    JobKind("SegmentVideoBody", False, ("SegmentVideoBody",), "matting / green screen"),
    JobKind("SplitVideoParts", False, ("SplitVideoParts",), "scene split"),
    JobKind("FillConcat", False, ("FillConcat",), "fill and concatenate"),
    JobKind("VideoSynthesis", False, ("VideoSynthesis",), "picture-in-picture composition"),
    # Its `Transcode` is a live-transcode variant: the typed message reads what it shares with
    # Transcode and keeps the rest in `Transcode.extra_nodes`.
    JobKind("GeneratePlayList", False, ("Transcode",), "live-transcode playlist"),
    JobKind("DNA", False, ("DnaConfig",), "video fingerprint"),
    JobKind("PicProcess", False, ("PicProcess",), "image processing"),
    JobKind("PosterProduction", False, ("PosterProduction",), "poster synthesis"),
    JobKind("ImageInspect", False, ("ImageInspect",), "image black-market check"),
    JobKind("ImageOCR", False, ("ImageOCR",), "OCR"),
)

KINDS: Mapping[str, JobKind] = {k.tag: k for k in _ALL}
"""Every accepted tag -> its kind, in the catalogue's order."""


def kind(tag: str) -> JobKind | None:
    """The kind `tag` names (exact spelling, as CI's), or None for no CI job kind."""
    return KINDS.get(tag)
