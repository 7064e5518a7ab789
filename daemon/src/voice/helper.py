# The voice helper of chatd (daemon/src/voice/): decodes one untrusted recording, converts it
# to Ogg/Opus and transcribes it with faster-whisper. The daemon starts it once per job, in
# its own process group, without network where the kernel allows, with RLIMIT_AS and
# RLIMIT_CPU set, and kills it on timeout (docs/security.md, "Voice messages").
#
# Input: the recording on stdin (at most --max-bytes). Output: one JSON object on stdout:
#   {"duration_ms": N, "language": "en", "text": "...",
#    "words": [{"word": "Tuesday", "start_ms": 1220, "end_ms": 1580}, ...], "transcribed": true}
# or, on a refusal, {"error": KIND, "message": "..."} and exit status 3, where KIND is one of
# not_audio, too_long, too_large, no_model, failed.
import argparse
import io
import json
import sys


def fail(kind, message):
    sys.stdout.write(json.dumps({"error": kind, "message": message}) + "\n")
    sys.stdout.flush()
    sys.exit(3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="")
    p.add_argument("--out", default="")
    p.add_argument("--max-seconds", type=float, default=300.0)
    p.add_argument("--max-bytes", type=int, default=64 << 20)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()

    import socket

    try:
        names = [n for _, n in socket.if_nameindex()]
        network = "isolated" if names in ([], ["lo"]) else "shared"
    except OSError:
        network = "unknown"

    data = sys.stdin.buffer.read(a.max_bytes + 1)
    if len(data) > a.max_bytes:
        fail("too_large", "the recording is larger than %d bytes" % a.max_bytes)
    if not data:
        fail("not_audio", "the file is empty")

    import av  # PyAV: FFmpeg's decoders, in this process only
    import numpy as np

    try:
        src = av.open(io.BytesIO(data), mode="r")
    except Exception as e:  # noqa: BLE001 - any decoder failure is "not audio"
        fail("not_audio", "not a recording this node can decode (%s)" % type(e).__name__)
    if not src.streams.audio:
        fail("not_audio", "the file has no audio stream")
    stream = src.streams.audio[0]
    if src.duration is not None and src.duration / 1_000_000 > a.max_seconds + 1:
        fail("too_long", "the recording is %.0f s long; at most %.0f s" % (src.duration / 1e6, a.max_seconds))

    to_16k = av.AudioResampler(format="s16", layout="mono", rate=16000)
    out = enc = to_48k = None
    if a.out:
        out = av.open(a.out, mode="w", format="ogg")
        enc = out.add_stream("libopus", rate=48000)
        enc.layout = "mono"
        enc.bit_rate = 32000
        to_48k = av.AudioResampler(format="s16", layout="mono", rate=48000)
        fifo = av.AudioFifo()
    pcm = []
    samples = 0
    limit = int(a.max_seconds * 16000)

    def encode(frames, last=False):
        # libopus takes frames of exactly frame_size samples (the last one may be short).
        for f in frames:
            f.pts = None
            fifo.write(f)
        size = enc.codec_context.frame_size or 960
        while fifo.samples >= size or (last and fifo.samples > 0):
            chunk = fifo.read(size) if fifo.samples >= size else fifo.read()
            chunk.pts = None
            for packet in enc.encode(chunk):
                out.mux(packet)

    try:
        for frame in src.decode(stream):
            # Each resampler gets a frame of its own: one that has nothing to do hands the
            # frame itself on, changed, and the other one would then refuse it.
            if enc is not None:
                copy = av.AudioFrame.from_ndarray(
                    frame.to_ndarray(), format=frame.format.name, layout=frame.layout.name
                )
                copy.sample_rate = frame.sample_rate
                encode(to_48k.resample(copy))
            for f in to_16k.resample(frame):
                arr = f.to_ndarray().reshape(-1)
                samples += arr.shape[0]
                pcm.append(arr)
            if samples > limit:
                fail("too_long", "the recording is longer than %.0f s" % a.max_seconds)
        for f in to_16k.resample(None):
            pcm.append(f.to_ndarray().reshape(-1))
        if enc is not None:
            encode(to_48k.resample(None), last=True)
            for packet in enc.encode(None):
                out.mux(packet)
            out.close()
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        fail("not_audio", "the recording is damaged (%s: %s)" % (type(e).__name__, e))
    audio = (np.concatenate(pcm) if pcm else np.zeros(0, dtype=np.int16)).astype(np.float32) / 32768.0
    if audio.shape[0] == 0:
        fail("not_audio", "the file holds no audio samples")
    duration_ms = int(audio.shape[0] * 1000 / 16000)
    result = {"duration_ms": duration_ms, "language": "", "text": "", "words": [], "transcribed": False,
              "network": network}
    if a.model:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            fail("no_model", "faster-whisper is not installed for this Python")
        try:
            model = WhisperModel(a.model, device="cpu", compute_type="int8", cpu_threads=a.threads)
        except Exception as e:  # noqa: BLE001
            fail("no_model", "cannot load the model in %s (%s)" % (a.model, type(e).__name__))
        segments, info = model.transcribe(audio, beam_size=1, word_timestamps=True, vad_filter=True)
        texts = []
        for s in segments:
            texts.append(s.text.strip())
            for w in s.words or []:
                word = w.word.strip()
                if word:
                    result["words"].append(
                        {"word": word, "start_ms": int(w.start * 1000), "end_ms": int(w.end * 1000)}
                    )
        result["language"] = info.language or ""
        result["text"] = " ".join(t for t in texts if t)
        result["transcribed"] = True
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
