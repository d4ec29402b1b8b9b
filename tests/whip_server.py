#!/usr/bin/python3
"""A WHIP endpoint for the tests, standing in for a studio's media server / SFU.

`whip_server.py <listen-ip> <port> <token>` accepts `POST /whip` (application/sdp, Bearer token)
with GStreamer's webrtcbin as the receiving peer, decodes the H.264 it gets, and answers
`201 Created` with the SDP answer and a `Location`. `GET /stats` returns
{"sessions": n, "frames": decoded frames, "deleted": DELETEs seen, "refused": 401s}.
Needs Debian's python3-gi, gir1.2-gst-plugins-bad-1.0 and GStreamer's plugins."""
import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

Gst.init(None)
LISTEN, PORT, TOKEN = sys.argv[1], int(sys.argv[2]), sys.argv[3]
state = {"sessions": 0, "frames": 0, "deleted": 0, "refused": 0}
lock = threading.Lock()
pipelines = {}


def on_frame(_sink):
    with lock:
        state["frames"] += 1
    return Gst.FlowReturn.OK


def answer(offer_text):
    pipe = Gst.Pipeline.new()
    webrtc = Gst.ElementFactory.make("webrtcbin")
    webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
    pipe.add(webrtc)

    def on_pad(_el, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        decode = Gst.parse_bin_from_description(
            "queue ! rtph264depay ! avdec_h264 ! appsink name=frames emit-signals=true sync=false", True)
        pipe.add(decode)
        decode.sync_state_with_parent()
        decode.get_by_name("frames").connect("new-sample", lambda s: (s.emit("pull-sample"), on_frame(s))[1])
        pad.link(decode.get_static_pad("sink"))

    webrtc.connect("pad-added", on_pad)
    pipe.set_state(Gst.State.PLAYING)
    _, sdp = GstSdp.SDPMessage.new_from_text(offer_text)
    offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, sdp)
    p = Gst.Promise.new()
    webrtc.emit("set-remote-description", offer, p)
    p.wait()
    reply = p.get_reply()
    if reply is not None and reply.has_field("error"):
        raise RuntimeError(f"set-remote-description: {reply.get_value('error')}")
    p = Gst.Promise.new()
    webrtc.emit("create-answer", None, p)
    p.wait()
    reply = p.get_reply()
    if reply is None or not reply.has_field("answer"):
        raise RuntimeError(f"create-answer: {reply and reply.to_string()}\n{offer_text}")
    ans = reply.get_value("answer")
    p = Gst.Promise.new()
    webrtc.emit("set-local-description", ans, p)
    p.wait()
    done = threading.Event()
    webrtc.connect("notify::ice-gathering-state", lambda el, _p: done.set()
                   if el.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE else None)
    if webrtc.get_property("ice-gathering-state") != GstWebRTC.WebRTCICEGatheringState.COMPLETE:
        done.wait(3)
    return pipe, webrtc.get_property("local-description").sdp.as_text()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_args):
        pass

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            self.reply(200, json.dumps(state).encode(), [("Content-Type", "application/json")])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            with lock:
                state["refused"] += 1
            return self.reply(401, b"bad token\n")
        if self.headers.get("Content-Type", "").split(";")[0] != "application/sdp":
            return self.reply(415)
        pipe, sdp = answer(body)
        sid = uuid.uuid4().hex
        pipelines[sid] = pipe
        with lock:
            state["sessions"] += 1
        self.reply(201, sdp.encode(), [("Content-Type", "application/sdp"), ("Location", f"/whip/session/{sid}")])

    def do_DELETE(self):
        sid = self.path.rsplit("/", 1)[-1]
        pipe = pipelines.pop(sid, None)
        if pipe is not None:
            pipe.set_state(Gst.State.NULL)
        with lock:
            state["deleted"] += 1
        self.reply(200 if pipe else 404)


server = ThreadingHTTPServer((LISTEN, PORT), Handler)
threading.Thread(target=GLib.MainLoop().run, daemon=True).start()
print(f"http://{LISTEN}:{PORT}/whip", flush=True)
server.serve_forever()
