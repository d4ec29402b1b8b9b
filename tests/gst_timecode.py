#!/usr/bin/python3
"""GStreamer's answers to timecode questions: the oracle for tests/timecode_gstreamer.rs.

Every answer is computed by GStreamer's GstVideoTimeCode (libgstvideo, through the GObject
introspection bindings), the implementation the video pipeline uses (timecodestamper), so the
test can check that Croupier labels frames exactly as GStreamer does.

Run it with the system Python (/usr/bin/python3): the bindings come from Debian's python3-gi,
gir1.2-gstreamer-1.0 and gir1.2-gst-plugins-base-1.0, which scripts/install-deps.sh installs.

Queries come one per line on stdin (or a single query as the command-line arguments), and each
gives exactly one JSON line on stdout, in order, echoing the query:

  version                       -> {"q": "version", "gstreamer": "GStreamer 1.22.0"}
  frames RATE N                 -> the label N frames after 00:00:00:00
                                   (VideoTimeCode 00:00:00:00, add_frames(N)), with
                                   "label" (to_string) and "frames" (frames_since_daily_jam)
  label RATE HH:MM:SS:FF        -> "valid" (is_valid); if valid, "frames"
                                   (frames_since_daily_jam) and "next" (after increment_frame)
  at RATE UNIX_SECONDS MICROS   -> the label GStreamer gives that UTC instant
                                   (new_from_date_time_full, as timecodestamper's RTC source):
                                   "label" (null if GStreamer refused), "frames", "valid"

RATE is FPS_N/FPS_D, with "df" appended for drop-frame: 25/1, 30000/1001df, 24000/1001.
A query that cannot be read gives {"q": ..., "error": "..."} and the script goes on.
"""

import json
import sys

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import GLib, Gst, GstVideo
except (ImportError, ValueError) as err:
    sys.stderr.write(
        "gst_timecode.py: GStreamer's Python bindings are missing (%s); "
        "install python3-gi, gir1.2-gstreamer-1.0 and gir1.2-gst-plugins-base-1.0 "
        "(`make test` does it through scripts/install-deps.sh)\n" % err
    )
    sys.exit(3)

Gst.init(None)

DROP_FRAME = GstVideo.VideoTimeCodeFlags.DROP_FRAME
NONE = GstVideo.VideoTimeCodeFlags.NONE


def parse_rate(text):
    drop = text.endswith("df")
    if drop:
        text = text[:-2]
    num, den = text.split("/")
    return int(num), int(den), (DROP_FRAME if drop else NONE)


def timecode(rate, hours, minutes, seconds, frames):
    """A VideoTimeCode without a daily jam, as `gst_video_time_code_new (..., NULL, ...)`."""
    fps_n, fps_d, flags = rate
    tc = GstVideo.VideoTimeCode.new_empty()
    tc.init(fps_n, fps_d, None, flags, hours, minutes, seconds, frames, 0)
    return tc


def answer(words):
    kind = words[0]
    if kind == "version":
        return {"gstreamer": Gst.version_string()}
    if kind not in ("frames", "label", "at"):
        raise ValueError("unknown query %r: use version, frames, label or at" % kind)
    rate = parse_rate(words[1])
    if kind == "frames":
        tc = timecode(rate, 0, 0, 0, 0)
        tc.add_frames(int(words[2]))
        return {"label": tc.to_string(), "frames": tc.frames_since_daily_jam()}
    if kind == "label":
        hours, minutes, seconds, frames = (int(f) for f in words[2].replace(";", ":").split(":"))
        tc = timecode(rate, hours, minutes, seconds, frames)
        if not tc.is_valid():
            # frames_since_daily_jam and increment_frame refuse invalid timecodes.
            return {"valid": False}
        frames_since = tc.frames_since_daily_jam()
        tc.increment_frame()
        return {"valid": True, "frames": frames_since, "next": tc.to_string()}
    if kind == "at":
        fps_n, fps_d, flags = rate
        # g_date_time_add takes microseconds exactly; building the GDateTime from a float
        # number of seconds could round the microseconds.
        dt = GLib.DateTime.new_from_unix_utc(int(words[2])).add(int(words[3]))
        tc = GstVideo.VideoTimeCode.new_from_date_time_full(fps_n, fps_d, dt, flags, 0)
        if tc is None:
            return {"label": None, "valid": False}
        valid = tc.is_valid()
        return {
            "label": tc.to_string(),
            "valid": valid,
            "frames": tc.frames_since_daily_jam() if valid else None,
            "utc": dt.format("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % dt.get_microsecond(),
        }
    raise AssertionError(kind)


def main():
    lines = [" ".join(sys.argv[1:])] if len(sys.argv) > 1 else sys.stdin
    out = sys.stdout
    for line in lines:
        words = line.split()
        if not words:
            continue
        query = " ".join(words)
        try:
            result = answer(words)
        except (ValueError, IndexError) as err:
            result = {"error": str(err)}
        result["q"] = query
        out.write(json.dumps(result, separators=(",", ":")) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
