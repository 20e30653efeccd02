"""Link protocol versions on emulated boards: this host (v1.1) still talks to a board running
v1 firmware (the firmware of the last v1 release, built from the repository's history), and a
v1.1 board refuses a v1-only host with a refusal that host can read and show."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import oracle
import pytest
from conftest import BOOT_TIMEOUT_S, BUILD_TIMEOUT_S, REPLY_TIMEOUT_S, ROOT

from manyfold.devices import greenhouse as gh
from manyfold.devices import protocol as p
from manyfold.devices import qemu
from manyfold.devices.link import LinkClient, NackError, Timers
from manyfold.framing import FrameDecoder, encode_frame

V1_RELEASE = "dfa82dc"
"""The last commit whose boards speak link protocol v1 (the firmware before v1.1)."""

BOARD = "lm3s6965evb"
SPEC = gh.greenhouse_spec()
IMAGE = SPEC.encode()


@pytest.fixture(scope="session")
def v1_firmware(toolchain, tmp_path_factory) -> Path:
    """The v1 firmware for lm3s6965evb, built from the v1 release's sources (git archive of
    boards/, framing/ and runtime_nostd/ at ``V1_RELEASE``)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("the v1 interop tests build the v1 firmware from the repository's history: they need git and a clone", pytrace=False)
    tree = tmp_path_factory.mktemp("link-v1")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", V1_RELEASE, "Cargo.toml", "boards", "framing", "runtime_nostd"],
        capture_output=True, timeout=120,
    )  # fmt: skip
    if archive.returncode != 0:
        pytest.fail(f"git archive {V1_RELEASE} failed (a shallow clone?): {archive.stderr.decode()[-500:]}", pytrace=False)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=120)
    build = subprocess.run(["bash", str(tree / "boards" / "build.sh"), BOARD], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if build.returncode != 0:
        pytest.fail(f"building the v1 firmware failed:\n{build.stderr[-3000:]}", pytrace=False)
    return tree / "boards" / "out" / BOARD / "firmware.elf"


def _start(elf: Path, tmp_path: Path):
    return qemu.start_board(BOARD, elf, IMAGE, log=tmp_path / "qemu.log", boot_timeout_s=BOOT_TIMEOUT_S, reply_timeout_s=REPLY_TIMEOUT_S)


def test_a_v1_1_host_talks_to_a_v1_board(v1_firmware, tmp_path):
    """Against v1 firmware, the host's v1.1 hello is refused (version_unsupported, detail 1) and
    it says hello again in v1: then handshake, lockstep steps, events, queries, a host event and
    resume work as with a v1.1 board."""
    with _start(v1_firmware, tmp_path) as b:
        c = b.client(session=3)
        d = c.connect(lockstep=True, reset=True)
        assert (d.version, d.protocol, c.version) == (1, "1", 1)
        assert (d.partition, d.manifest_id, d.lockstep) == ("greenhouse-sensors", SPEC.image_id(), True)
        events = c.step(3_000_000)
        avg = [e for e in events if e.route == SPEC.route_index(gh.Z1_TEMP_AVG)]
        assert len(avg) >= 8 and all("det_seeded_entropy" in e.taint_names for e in avg)
        assert [e.seq for e in avg] == list(range(1, len(avg) + 1))
        assert c.latest(gh.Z1_TEMP_AVG) == avg[-1]
        routes = c.routes()
        assert len(routes) == len(SPEC.routes) and all(r.taints is None for r in routes), "v1 rows have no declared taints"
        ack = c.send_event(gh.FAN_DESIRED, 40.0, time_us=3_000_000)
        assert ack.info == 0, "a v1 board acks a host event with info 0"
        events = c.step(3_500_000)
        assert [e.value for e in events if e.route == SPEC.route_index(gh.FAN_REPORTED)] == [40.0]
        counters = c.counters_device()
        assert (counters.steps, counters.events_in, counters.nacks_tx) == (2, 1, 0), "its counters start at the reset, after the refusal"
        c.resume()
        assert not c.board().lockstep
        assert (c.counters.sessions, c.counters.nacks) == (1, 1), "one refusal: the v1.1 hello"


def test_a_v1_host_is_refused_by_a_v1_1_board(run_board, board):
    """A v1-only host says hello in v1: the v1.1 board refuses it with a nack in the layout v1
    reads (version_unsupported, detail 2), which the host shows as a sentence; the board then
    serves a v1.1 host as usual."""
    with run_board(IMAGE) as b:
        c = LinkClient.open(b.url, session=5, version_max=1, timers=Timers(reply_timeout_s=REPLY_TIMEOUT_S))
        with pytest.raises(NackError) as refused:
            c.connect()
        assert (refused.value.reason, refused.value.detail) == (p.NackReason.VERSION_UNSUPPORTED, 2)
        assert str(refused.value) == "the device refused the hello: version_unsupported (detail 2)"
        c.close()
        # The v1 codec (an independent one, written from the v1 spec) reads the refusal.
        port = b.client().port
        port.write(encode_frame(oracle.encode(oracle.Message(9, oracle.Hello(1, 256, 6, 0, 0))), 256))
        frames, decoder = [], FrameDecoder(256)
        for _ in range(200):
            frames += decoder.feed(port.read(256) or b"")
            if frames:
                break
        nack = oracle.decode(frames[0]).body
        assert (nack.ref, nack.reason, nack.detail) == (9, oracle.NackReason.VERSION_UNSUPPORTED, 2)
        port.close()
        c = b.client(session=6)
        assert c.connect().protocol == "1.1"
