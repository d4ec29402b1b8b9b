#!/usr/bin/python3
"""An IP camera for the tests: GStreamer's RTSP server streaming a moving test pattern as H.264
at rtsp://127.0.0.1:<port>/cam. Killing this process is "pulling the camera"; starting it again
on the same port is "plugging it back". Needs Debian's gir1.2-gst-rtsp-server-1.0."""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port = sys.argv[1] if len(sys.argv) > 1 else "8554"
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true pattern=smpte ! video/x-raw,width=320,height=240,framerate=25/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
server.attach(None)
print(f"rtsp://127.0.0.1:{port}/cam", flush=True)
GLib.MainLoop().run()
