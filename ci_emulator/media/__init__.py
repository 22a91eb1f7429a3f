"""Media jobs run for real: every typed kind of the job catalogue, with PyAV/FFmpeg.

Layers (imports point down; only `runner` and `worker` know about processes):

    validate, fields   submit time: Operation XML -> MediaRequest (model), CI's refusals
    runner             parent side: worker processes (forkserver), progress, kill, publish
    worker             process entry: dispatch by tag to the kind modules
    transcode, snapshot, animation, concat, remux (Segment, StreamExtract), cover
    (SmartCover), voice (VoiceSeparate), enhance (SDRtoHDR, SuperResolution, VideoProcess,
    VideoEnhance), montage (VideoMontage), digital (DigitalWatermark,
    ExtractDigitalWatermark)
                       the kinds: read inputs, write into the staging folder, name outputs
    pipeline           the shared decode -> filter -> encode loop; overlay, font: watermarks
    outputs, result    output keys and files; MediaResult nodes
    model, task        plain picklable values;  codecs: CI names -> FFmpeg;  placeholders
    progress, errors, sources   reporting, job failure codes, opening inputs

This package's `__init__` imports nothing: `jobs` needs `model` without loading FFmpeg.
"""
