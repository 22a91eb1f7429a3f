"""A finished media job's result nodes: `MediaResult` (catalogue §1.2, appendix A.1) and the
kind-specific ones (DigitalWatermark's `State`, the extracted watermark message).

    MediaResult
      OutputFile
        Bucket, Region, ObjectPrefix, ObjectName[], Md5Info[] { ObjectName, Md5 }
        SpriteOutputFile { Bucket, Region, ObjectPrefix, ObjectName[], Md5Info[] }

"The actual output file is StringConcat(ObjectPrefix, ObjectName)" (catalogue, Snapshot):
`ObjectPrefix` is the folder part (through the last `/`) the files share, and each
`ObjectName` the rest, so a client that concatenates the two gets every key back.
`Md5Info.ObjectName` carries the same relative name. MD5s are lower-case hex (UNCONFIRMED).
"""

from __future__ import annotations

from collections.abc import Sequence

from ci_emulator.media.model import OutputSpec
from ci_emulator.media.task import Produced
from ci_emulator.xmlbuild import Fields


def media_result(output: OutputSpec, files: Sequence[Produced]) -> Fields:
    main = [item for item in files if item.role == "main"]
    sprites = [item for item in files if item.role == "sprite"]
    node = _file_node(output, main)
    if sprites:
        node.append(("SpriteOutputFile", _file_node(output, sprites)))
    return [("MediaResult", [("OutputFile", node)])]


def common_prefix(keys: Sequence[str]) -> str:
    """The folder part every key shares (`a/b/x.jpg`, `a/b/y.jpg` -> `a/b/`)."""
    if not keys:
        return ""
    folders = [key.rsplit("/", 1)[0] + "/" if "/" in key else "" for key in keys]
    prefix = folders[0]
    for folder in folders[1:]:
        while not folder.startswith(prefix):
            prefix = prefix[:-1].rsplit("/", 1)[0] + "/" if "/" in prefix[:-1] else ""
    return prefix


def _file_node(output: OutputSpec, files: Sequence[Produced]) -> Fields:
    prefix = common_prefix([item.key for item in files])
    node: Fields = [("Bucket", output.bucket), ("Region", output.region), ("ObjectPrefix", prefix)]
    node += [("ObjectName", item.key[len(prefix) :]) for item in files]
    node += [
        ("Md5Info", [("ObjectName", item.key[len(prefix) :]), ("Md5", item.md5)]) for item in files
    ]
    return node
