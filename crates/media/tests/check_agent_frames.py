#!/usr/bin/env python3
"""Independent check of the agent WebSocket's frames against an open-source voice-agent
framework (PyPI `pipecat-ai`), the way a bot built on it would read them.

usage: check_agent_frames.py PATH/TO/agent_frames

`agent_frames` is this crate's example binary:
    cargo build -p ami-media --example agent_frames
    python3 crates/media/tests/check_agent_frames.py target/debug/examples/agent_frames

Checks:
1. the framework's telephony runner (`pipecat.runner.utils.parse_telephony_websocket`)
   recognises our first two frames and reads the stream and call ids from them;
2. the serializer of the detected transport reads our `media` and `dtmf` frames;
3. what that serializer writes for the bot's audio and for a barge-in (audio, clear)
   is read by our parser as `media` and `clear`;
4. if the `standardwebhooks` package is installed, it verifies the connect's signature
   headers over the start frame.
Exit 0 when all hold, 1 otherwise, 3 when pipecat-ai is not installed. Not run in CI.
"""
import asyncio
import importlib
import inspect
import subprocess
import sys
import types

try:
    from pipecat.frames.frames import (
        InputAudioRawFrame,
        InputDTMFFrame,
        InterruptionFrame,
        OutputAudioRawFrame,
    )
    from pipecat.runner.utils import parse_telephony_websocket
    from pipecat.serializers.base_serializer import FrameSerializer
except ImportError as e:
    print(f"pipecat-ai is not installed: {e}", file=sys.stderr)
    sys.exit(3)

binary = sys.argv[1]
frames = subprocess.run([binary, "emit"], check=True, capture_output=True, text=True).stdout.splitlines()
by_event = {}
for line in frames:
    by_event.setdefault(__import__("json").loads(line)["event"], []).append(line)


class FakeWebSocket:
    """What the runner reads from: a FastAPI-like socket with `iter_text()`."""

    def __init__(self, texts):
        self._texts = texts

    async def _gen(self):
        for t in self._texts:
            yield t

    def iter_text(self):
        return self._gen()


failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


async def main():
    transport, call = await parse_telephony_websocket(FakeWebSocket(frames))
    check(transport != "unknown", f"runner detects the transport ({transport})")
    check(call.get("stream_id") == "str_example", f"stream id {call.get('stream_id')}")
    check(call.get("call_id") == "call_example", f"call id {call.get('call_id')}")
    check(call.get("from") == "+4915112345678", f"from {call.get('from')}")
    check(call.get("to") == "+4930123456", f"to {call.get('to')}")

    # The serializer that belongs to the detected transport, found by module name.
    module = importlib.import_module(f"pipecat.serializers.{transport}")
    cls = next(
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, FrameSerializer) and c is not FrameSerializer and c.__module__ == module.__name__
    )
    serializer = cls(stream_sid=call.get("stream_id"), params=cls.InputParams(sample_rate=8000, auto_hang_up=False))
    await serializer.setup(types.SimpleNamespace(audio_in_sample_rate=8000))

    audio = await serializer.deserialize(by_event["media"][0])
    check(isinstance(audio, InputAudioRawFrame) and len(audio.audio) == 320, "media frame read as 20 ms of audio")
    dtmf = await serializer.deserialize(by_event["dtmf"][0])
    check(isinstance(dtmf, InputDTMFFrame) and str(dtmf.button.value) == "5", f"dtmf frame read as digit ({dtmf})")

    out_audio = await serializer.serialize(OutputAudioRawFrame(audio=b"\x00\x10" * 800, sample_rate=8000, num_channels=1))
    out_clear = await serializer.serialize(InterruptionFrame())
    parsed = subprocess.run(
        [binary, "parse"], input=f"{out_audio}\n{out_clear}\n", check=True, capture_output=True, text=True
    ).stdout.splitlines()
    check(parsed == ["media 800", "clear"], f"bot audio and barge-in read by us: {parsed}")

    try:
        from standardwebhooks import Webhook
    except ImportError:
        print("skip signature: standardwebhooks is not installed")
        return
    import base64
    import time

    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    now = int(time.time())
    headers_line, start = subprocess.run(
        [binary, "sign", secret, str(now)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    headers = __import__("json").loads(headers_line)
    try:
        Webhook(secret).verify(start, headers)
        check(True, "connect signature verified over the start frame")
    except Exception as e:  # noqa: BLE001 - any failure is the check failing
        check(False, f"connect signature: {e}")


asyncio.run(main())
sys.exit(1 if failures else 0)
