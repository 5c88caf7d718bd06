#!/usr/bin/env python3
"""Recompute the evidence digest of .gcap captures, independently of gcap and ganalyze.

    python3 scripts/gcap-digest.py [-v] FILE...

Prints "DIGEST  FILE" per file, as sha256sum does; with -v, also what the digest is (the
trailer's, vouching for every byte, or BLAKE3 of the file's bytes) and why. The digest is
defined in docs/FORMAT.md, section 3.1; `ganalyze info` prints the same value. Only the
Python standard library is used: BLAKE3 is implemented below after its specification
(https://github.com/BLAKE3-team/BLAKE3-specs), since hashlib has none, and no payload is
decompressed (the digest covers the stored bytes).

Exit status: 0 when every file was read, 2 when one is not a capture or cannot be read.
"""

import struct
import sys
import zlib

# --- BLAKE3 (hash mode, 32-byte output) ----------------------------------------------

_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
       0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_PERM = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
_CHUNK_START, _CHUNK_END, _PARENT, _ROOT = 1, 2, 4, 8
_BLOCK_LEN, _CHUNK_LEN = 64, 1024
_M32 = 0xFFFFFFFF


def _schedules():
    """The message word order of each of the 7 rounds (the permutation applied r times)."""
    order = list(range(16))
    out = []
    for _ in range(7):
        out.append(tuple(order))
        order = [order[p] for p in _PERM]
    return tuple(out)


_SCHEDULE = _schedules()
_G_LANES = ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
            (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14))


def _compress(cv, words, counter, block_len, flags):
    s = [cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
         _IV[0], _IV[1], _IV[2], _IV[3],
         counter & _M32, (counter >> 32) & _M32, block_len, flags]
    for sched in _SCHEDULE:
        for i, (a, b, c, d) in enumerate(_G_LANES):
            mx = words[sched[2 * i]]
            my = words[sched[2 * i + 1]]
            va, vb, vc, vd = s[a], s[b], s[c], s[d]
            va = (va + vb + mx) & _M32
            vd ^= va
            vd = ((vd >> 16) | (vd << 16)) & _M32
            vc = (vc + vd) & _M32
            vb ^= vc
            vb = ((vb >> 12) | (vb << 20)) & _M32
            va = (va + vb + my) & _M32
            vd ^= va
            vd = ((vd >> 8) | (vd << 24)) & _M32
            vc = (vc + vd) & _M32
            vb ^= vc
            vb = ((vb >> 7) | (vb << 25)) & _M32
            s[a], s[b], s[c], s[d] = va, vb, vc, vd
    return [s[i] ^ s[i + 8] for i in range(8)]


def _words(block):
    return struct.unpack("<16I", block.ljust(_BLOCK_LEN, b"\0"))


def _chunk_output(data, counter):
    """(cv, last block words, block length, flags) of a chunk, before its final compression."""
    cv = _IV
    blocks = [data[i:i + _BLOCK_LEN] for i in range(0, max(len(data), 1), _BLOCK_LEN)]
    for n, block in enumerate(blocks[:-1]):
        cv = _compress(cv, _words(block), counter, _BLOCK_LEN,
                       _CHUNK_START if n == 0 else 0)
    last = blocks[-1]
    flags = _CHUNK_END | (_CHUNK_START if len(blocks) == 1 else 0)
    return cv, _words(last), len(last), flags, counter


def blake3(data):
    """BLAKE3 of data, 32 bytes."""
    data = bytes(data)
    chunks = [data[i:i + _CHUNK_LEN] for i in range(0, max(len(data), 1), _CHUNK_LEN)]
    stack = []
    for counter, chunk in enumerate(chunks[:-1]):
        cv, w, n, f, c = _chunk_output(chunk, counter)
        cv = _compress(cv, w, c, n, f)
        total = counter + 1
        # Merge completed subtrees: one parent per trailing zero bit of the chunk count.
        while total & 1 == 0:
            cv = _compress(_IV, tuple(stack.pop()) + tuple(cv), 0, _BLOCK_LEN, _PARENT)
            total >>= 1
        stack.append(cv)
    out = _chunk_output(chunks[-1], len(chunks) - 1)
    while stack:
        cv, w, n, f, c = out
        right = _compress(cv, w, c, n, f)
        out = (_IV, tuple(stack.pop()) + tuple(right), _BLOCK_LEN, _PARENT, 0)
    cv, w, n, f, c = out
    return struct.pack("<8I", *_compress(cv, w, c, n, f | _ROOT))


# --- the .gcap evidence digest (docs/FORMAT.md, section 3.1) ---------------------------

FILE_MAGIC = b"\x89GCAP\r\n\x1a"
FRAME_MAGIC = b"GBLK"
TRAILER_MAGIC = b"GCAPEND\0"
HEADER, FRAME_HEADER, DIGEST, TRAILER = 32, 24, 32, 68
MAX_LEN = 64 << 20
KNOWN_FRAME_FLAGS = 0x0003  # zstd, summary (FORMAT.md §1.2)
INDEX_KIND = 8


class NotACapture(Exception):
    pass


def _frame(b, at, end):
    """(kind, payload_len) of a well-formed frame at `at` that ends by `end`, else None."""
    h = b[at:at + FRAME_HEADER]
    if len(h) < FRAME_HEADER or h[:4] != FRAME_MAGIC:
        return None
    kind, flags, _seq, payload_len, raw_len, crc = struct.unpack("<HHIIII", h[4:])
    if crc != zlib.crc32(h[:20]) or flags & ~KNOWN_FRAME_FLAGS:
        return None
    if payload_len > MAX_LEN or raw_len > MAX_LEN:
        return None
    if at + FRAME_HEADER + payload_len + DIGEST > end:
        return None
    return kind, payload_len


def evidence_digest(b):
    """(hex digest, why) for the bytes of one capture."""
    if len(b) < HEADER or b[:8] != FILE_MAGIC:
        raise NotACapture("not a gcap capture (no gcap magic)")
    if struct.unpack("<I", b[28:32])[0] != zlib.crc32(b[:28]):
        raise NotACapture("the file header's CRC does not match")
    whole = lambda why: (blake3(b).hex(), why + ": BLAKE3 of the file's bytes")
    if len(b) < HEADER + TRAILER:
        return whole("too short for a trailer")
    t = b[-TRAILER:]
    if t[:8] != TRAILER_MAGIC or t[28:32] != b"\0\0\0\0" or \
            struct.unpack("<I", t[64:68])[0] != zlib.crc32(t[:64]):
        return whole("no valid trailer")
    index_offset, file_len, blocks = struct.unpack("<QQI", t[8:28])
    trailer_digest = t[32:64]
    end = len(b) - TRAILER
    prev = blake3(b[:HEADER])
    at, n, last_kind, last_at = HEADER, 0, None, None
    while at < end:
        f = _frame(b, at, end)
        if f is None:
            return whole("the frames do not run up to the trailer")
        kind, payload_len = f
        payload_end = at + FRAME_HEADER + payload_len
        stored = b[payload_end:payload_end + DIGEST]
        if blake3(prev + b[at:payload_end]) != stored:
            return whole(f"the frame at byte {at} does not match the hash chain")
        prev, n, last_kind, last_at = stored, n + 1, kind, at
        at = payload_end + DIGEST
    if last_kind != INDEX_KIND or last_at != index_offset or file_len != len(b) \
            or blocks != n or trailer_digest != prev:
        return whole("the trailer does not match the frames")
    return prev.hex(), f"the trailer's digest: {n} frames, every link holds"


def main(argv):
    verbose = "-v" in argv
    files = [a for a in argv if a != "-v"]
    if not files:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    status = 0
    for path in files:
        try:
            with open(path, "rb") as f:
                digest, why = evidence_digest(f.read())
        except (OSError, NotACapture) as e:
            print(f"gcap-digest: {path}: {e}", file=sys.stderr)
            status = 2
            continue
        print(f"{digest}  {path}" + (f"  ({why})" if verbose else ""))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
