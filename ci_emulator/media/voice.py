"""VoiceSeparate: vocal and accompaniment tracks by a documented stereo approximation.

CI separates with a trained model; the emulator uses the classic mid/side trick, which is real
signal processing with the right shape of result:

* voice (`Object`; AudioMode IsAudio or AudioAndBackground): the mid signal (L+R)/2, band-passed
  to the voice range (highpass 150 Hz, lowpass 4 kHz);
* background (`AuObject`, or `Object` for IsBackground): the side signal (L-R) on both channels,
  which cancels whatever is centred (usually the voice); silence for a mono input;
* bass (`BassObject`): lowpass 250 Hz; drums (`DrumObject`): highpass 5 kHz (cymbals).

`AudioConfig` (Codec, Samplerate, Bitrate, Channels) applies to every track; each key's
extension picks its container (mp3 when it has none).
"""

from __future__ import annotations

from typing import Any, Final

import av
import av.filter

from ci_emulator.media import codecs
from ci_emulator.media.errors import invalid
from ci_emulator.media.model import AudioSpec, VoiceSeparateParams
from ci_emulator.media.outputs import Outputs
from ci_emulator.media.pipeline import DEFAULT_AUDIO_KBPS
from ci_emulator.media.progress import Progress
from ci_emulator.media.sources import duration_s, open_input
from ci_emulator.media.task import MediaTask, WorkerResult

VOICE: Final = "pan=stereo|c0=0.5*c0+0.5*c1|c1=0.5*c0+0.5*c1,highpass=f=150,lowpass=f=4000"
BACKGROUND: Final = "pan=stereo|c0=0.5*c0-0.5*c1|c1=0.5*c1-0.5*c0"
BASS: Final = "lowpass=f=250"
DRUMS: Final = "highpass=f=5000"
_EXTENSIONS: Final = {"mp3": "mp3", "m4a": "m4a", "aac": "aac", "flac": "flac", "wav": "wav"}


def run_voice_separate(task: MediaTask, progress: Progress) -> WorkerResult:
    params = task.request.params
    assert isinstance(params, VoiceSeparateParams) and task.input_path is not None
    output = task.request.output
    assert output is not None
    tracks: list[tuple[str, str]] = []
    if params.mode in ("IsAudio", "AudioAndBackground"):
        tracks.append((output.object or "", VOICE))
    if params.mode == "AudioAndBackground":
        tracks.append((output.au_object or "", BACKGROUND))
    if params.mode == "IsBackground":
        tracks.append((output.au_object or output.object or "", BACKGROUND))
    tracks += [
        (key, chain)
        for key, chain in ((output.bass_object, BASS), (output.drum_object, DRUMS))
        if key
    ]
    outputs = Outputs(task)
    with open_input(task.input_path) as source:
        stream = next(iter(source.streams.audio), None)
        if stream is None:
            raise invalid("the input has no audio stream to separate")
        total = duration_s(source)
        writers = [_Track(outputs, key, chain, params.audio, stream) for key, chain in tracks]
        try:
            for frame in source.decode(stream):
                for writer in writers:
                    writer.feed(frame)
                if frame.time is not None:
                    progress.fraction(frame.time / max(total, 1e-6))
            for writer in writers:
                writer.feed(None)
        finally:
            for writer in writers:
                writer.close()
    return outputs.result()


class _Track:
    """One output track: a filter chain over the decoded input, an encoder, a file."""

    def __init__(
        self, outputs: Outputs, template: str, chain: str, audio: AudioSpec, stream: Any
    ) -> None:
        ext = template.rsplit(".", 1)[-1].lower() if "." in template.rsplit("/", 1)[-1] else ""
        format_name = _EXTENSIONS.get(ext, "mp3")
        codec = audio.codec if ext else codecs.DEFAULT_AUDIO_CODEC.get(format_name, "aac")
        error = codecs.combination_error(format_name, None, codec)
        if error:
            raise invalid(error)
        container = codecs.CONTAINERS[format_name]
        key = outputs.key(template, container.ext)
        self._out: Any = av.open(str(outputs.file(key)), "w", format=container.muxer)
        rate = audio.sample_rate or int(stream.codec_context.sample_rate)
        if codec == "mp3":
            rate = min(rate, 48000)
        self._encoder: Any = self._out.add_stream(codecs.AUDIO_ENCODERS[codec], rate=rate)
        channels = audio.channels or 2
        layout = "mono" if channels == 1 else "stereo"
        ctx: Any = self._encoder.codec_context
        ctx.layout = layout
        if codec not in ("flac", "pcm_s16le"):
            ctx.bit_rate = (audio.bitrate_kbps or DEFAULT_AUDIO_KBPS) * 1000
        self._graph = av.filter.Graph()
        source = self._graph.add_abuffer(template=stream)
        last = source
        steps = [step.split("=", 1) for step in chain.split(",")]
        steps.append(
            [
                "aformat",
                f"sample_fmts={ctx.format.name}:sample_rates={rate}:channel_layouts={layout}",
            ]
        )
        for name, args in steps:
            node = self._graph.add(name, args)
            last.link_to(node)
            last = node
        self._sink = self._graph.add("abuffersink")
        last.link_to(self._sink)
        self._graph.configure()
        self._source = source
        self._samples = 0
        self._rate = rate

    def feed(self, frame: Any) -> None:
        self._source.push(frame)
        # Bounded: each pull takes a frame the graph holds; EAGAIN or EOF ends it.
        while True:
            try:
                out: Any = self._sink.pull()
            except (av.BlockingIOError, av.EOFError):
                break
            out.pts = self._samples
            self._samples += out.samples
            self._out.mux(self._encoder.encode(out))
        if frame is None:
            self._out.mux(self._encoder.encode(None))

    def close(self) -> None:
        self._out.close()
