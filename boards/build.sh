#!/usr/bin/env bash
# Cross-builds the board firmware for one board and copies the ELF to boards/out/<board>/.
#
#   boards/build.sh lm3s6965evb
#   boards/build.sh mps2-an386
#   boards/build.sh nucleo-f401re
#   boards/build.sh mps2-an386 udp     # the link over UDP (Ethernet), into out/mps2-an386-udp/
#
# Toolchain (Debian packages rustc-web cargo-web rust-web-src gcc-arm-none-eabi): Debian's rustc
# builds `core` for the target from source (-Zbuild-std, allowed by RUSTC_BOOTSTRAP=1) and binutils'
# arm-none-eabi-ld links with the board's linker script (boards/firmware/.cargo/config.toml and
# build.rs). A rustup toolchain is not used: its stable channel has no Cortex-M targets here.
#
# Environment: MANYFOLD_RUSTC (default /usr/bin/rustc), MANYFOLD_CARGO (default /usr/bin/cargo).
set -euo pipefail

script=${BASH_SOURCE[0]}
[[ $script == */* ]] || script=./$script
boards_dir=$(cd "${script%/*}" && pwd)
firmware_dir="$boards_dir/firmware"
rustc=${MANYFOLD_RUSTC:-/usr/bin/rustc}
cargo=${MANYFOLD_CARGO:-/usr/bin/cargo}

usage() {
    local known=() descriptor
    for descriptor in "$boards_dir"/*/board.toml; do
        descriptor=${descriptor%/board.toml}
        known+=("${descriptor##*/}")
    done
    echo "usage: $0 BOARD [serial|udp]   (BOARD one of: ${known[*]})" >&2
    exit 2
}
[[ $# -eq 1 || $# -eq 2 ]] || usage
board=$1
link=${2:-serial}
features="board-$board"
out_name=$board
case $link in
    serial) ;;
    udp) features="$features link-udp"; out_name="$board-udp" ;;
    *) echo "no link '$link' (serial or udp)" >&2; usage ;;
esac
descriptor="$boards_dir/$board/board.toml"
[[ -f $descriptor ]] || { echo "no board '$board' (no $descriptor)" >&2; usage; }

# The target triple is the descriptor's top-level `target = "..."` line.
target=$(sed -n 's/^target[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$descriptor" | head -n 1)
[[ -n $target ]] || { echo "$descriptor: no target = \"...\" line" >&2; exit 1; }

for tool in "$rustc" "$cargo" arm-none-eabi-ld; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool: apt-get install rustc-web cargo-web rust-web-src gcc-arm-none-eabi" >&2
        exit 1
    }
done

echo "== building manyfold-firmware for $board ($target, $link link)" >&2
(
    cd "$firmware_dir"
    RUSTC="$rustc" RUSTC_BOOTSTRAP=1 "$cargo" build --release \
        -Zbuild-std=core \
        --target "$target" \
        --features "$features" \
        --target-dir "$firmware_dir/target"
)

elf="$firmware_dir/target/$target/release/manyfold-firmware"
out="$boards_dir/out/$out_name"
mkdir -p "$out"
cp "$elf" "$out/firmware.elf"
if command -v arm-none-eabi-size >/dev/null; then
    arm-none-eabi-size "$out/firmware.elf" >&2
fi
echo "$out/firmware.elf"
