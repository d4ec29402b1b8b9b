// Croupier camera viewer: WebRTC (WHEP) first, LL-HLS over Media Source Extensions as fallback.
//
// Served by the daemon at /web/viewer.js for the page /video/<camera>?mode=auto|whep|hls.
// Plain ES2020 with no dependencies and no build step: the daemon embeds this file verbatim, the
// studio LAN may have no internet, and a technician must be able to read it at 3 a.m.
//
// Tests and benchmarks read window.croupierViewer (see the bottom of the "state" section).
'use strict';

(() => {
  // ---------------------------------------------------------------- tuning
  // Auto mode gives WebRTC this long after the answer to show a frame before falling back.
  const WHEP_FIRST_FRAME_MS = 5000;
  // Candidates gathered after this go to the server by PATCH; on a LAN gathering takes ~10 ms.
  const ICE_GATHER_CAP_MS = 2000;
  // A connected source that delivers no new frame for this long is treated as dead.
  const FROZEN_MS = 5000;
  // WebRTC "disconnected" often heals by itself; give it this long before giving up on it.
  const DISCONNECTED_GRACE_MS = 3000;
  const HLS_FIRST_FRAME_MS = 15000;
  // Backoff between full reconnect attempts, and between background WebRTC retries while on the
  // LL-HLS fallback (auto mode): quick at first, then gentle on a daemon that is struggling.
  const RETRY_MS = [1000, 2000, 5000, 10000];
  const WHEP_RETRY_MS = [10000, 30000, 60000, 120000];
  const KEEP_BEHIND_S = 30;
  const MAX_MESSAGES = 500;
  const MAX_ERRORS = 100;

  // ---------------------------------------------------------------- page parameters
  const params = new URLSearchParams(location.search);
  const requested = ['auto', 'whep', 'hls'].includes(params.get('mode')) ? params.get('mode') : 'auto';
  const camera = cameraFromPath(location.pathname);
  const ORDER = { auto: ['whep', 'hls'], whep: ['whep'], hls: ['hls'] };

  function cameraFromPath(path) {
    // /video/<camera>, tolerating a trailing slash or a prefix a reverse proxy may add.
    const parts = path.split('/').filter(Boolean);
    const i = parts.lastIndexOf('video');
    return decodeURIComponent(parts[i + 1] || parts[parts.length - 1] || '');
  }

  // ---------------------------------------------------------------- state
  const stage = document.getElementById('stage');
  const statusEl = document.getElementById('status');
  const tableEl = document.getElementById('table');
  const field = (id) => document.getElementById(id);

  let current = null; // the session whose picture is on screen (possibly dead, frozen)
  let lastError = '';
  let autoplayRefused = false;
  let table = null; // last table message and when it arrived, for the local countdown
  const sessions = new Set(); // every session not yet stopped, so pagehide can end them all

  const viewer = {
    mode: 'connecting', // 'connecting' | 'whep' | 'hls' | 'failed'
    video: null, // the <video> on screen
    pc: null, // RTCPeerConnection while mode is 'whep'
    messages: [], // data-channel messages, parsed JSON (raw string if not JSON), newest last
    errors: [], // "<where>: <what>" strings, newest last
    hls: { latencyMs: null, partsAppended: 0, discontinuities: 0 },
    // WebRTC: {framesDecoded, framesDropped, freezeCount, totalFreezesDuration, framesPerSecond,
    // jitter, packetsLost, currentRoundTripTime, jitterBufferMs}; LL-HLS: {framesDecoded,
    // framesDropped, currentTime, bufferedEnd, latencyMs, freezeCount, totalFreezesDuration,
    // liveTargetS}. Times in seconds as getStats() gives them, except the *Ms fields.
    async stats() {
      if (current && !current.dead) return current.stats();
      // Nothing live: the last figures of the source that died, if any, under the current mode.
      const zero = { framesDecoded: 0, framesDropped: 0, freezeCount: 0, totalFreezesDuration: 0 };
      return { ...zero, ...(current && current.lastStats), mode: viewer.mode };
    },
  };
  window.croupierViewer = viewer;

  function pushCapped(list, item, cap) {
    list.push(item);
    if (list.length > cap) list.splice(0, list.length - cap);
  }

  function report(where, err) {
    lastError = err && err.message ? err.message : String(err);
    pushCapped(viewer.errors, `${where}: ${lastError}`, MAX_ERRORS);
    console.warn(`croupier viewer ${where}:`, lastError);
  }

  function setMode(mode) {
    viewer.mode = mode;
    document.body.dataset.mode = mode;
    renderStatus();
  }

  // ---------------------------------------------------------------- small helpers
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function once(target, event) {
    return new Promise((resolve) => target.addEventListener(event, resolve, { once: true }));
  }

  // fetch with a deadline, an optional outer abort signal, and the HTTP status as an error.
  async function fetchOk(url, { signal, timeoutMs = 10000, ...init } = {}) {
    const ac = new AbortController();
    const abort = () => ac.abort(signal.reason);
    if (signal) {
      if (signal.aborted) abort();
      signal.addEventListener('abort', abort);
    }
    const timer = setTimeout(() => ac.abort(new Error(`no answer from ${shortUrl(url)} within ${timeoutMs} ms`)), timeoutMs);
    try {
      const res = await fetch(url, { ...init, signal: ac.signal });
      if (!res.ok) {
        const err = new Error(`${init.method || 'GET'} ${shortUrl(url)} → ${res.status} ${reasonOf(await res.text())}`);
        err.status = res.status;
        throw err;
      }
      return res;
    } finally {
      clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', abort);
    }
  }

  const shortUrl = (url) => new URL(url, location.href).pathname;

  // The daemon explains 4xx/5xx in a JSON or text body; keep it short enough for the status line.
  function reasonOf(body) {
    let text = body.trim();
    try {
      const j = JSON.parse(text);
      const words = [j.error, j.reason || j.message].filter((x) => typeof x === 'string' && x);
      if (words.length) text = words.join(': ');
    } catch (_) {
      // Plain text, or an HTML error page from a proxy: keep its words only.
      if (text.startsWith('<')) text = text.replace(/<(script|style)[^]*?<\/\1>|<[^>]*>/gi, ' ');
    }
    return text.replace(/\s+/g, ' ').trim().slice(0, 160);
  }

  function play(video) {
    video.play().catch((e) => {
      if (e.name !== 'NotAllowedError') return; // AbortError: a newer load replaced this one
      // Muted autoplay is normally allowed; a locked-down kiosk profile may still refuse it.
      autoplayRefused = true;
      renderStatus();
      document.addEventListener('click', () => {
        autoplayRefused = false;
        document.querySelectorAll('#stage video').forEach(play);
      }, { once: true });
    });
  }

  // Resolves once the element has a frame to show (and, where the browser says so, has shown it),
  // so swapping it on screen never flashes black.
  function firstPicture(video, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        video.removeEventListener('loadeddata', loaded);
        reject(new Error(`no video frame within ${timeoutMs / 1000} s (${what})`));
      }, timeoutMs);
      const loaded = () => {
        clearTimeout(timer);
        if (!video.requestVideoFrameCallback) return resolve();
        // requestVideoFrameCallback does not fire in a hidden tab: don't wait for it there.
        const fallback = setTimeout(resolve, 300);
        video.requestVideoFrameCallback(() => { clearTimeout(fallback); resolve(); });
      };
      if (video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA) loaded();
      else video.addEventListener('loadeddata', loaded, { once: true });
    });
  }

  // ---------------------------------------------------------------- the stage
  // Each connection attempt decodes into its own <video>, invisible under the current picture,
  // and replaces it only once it has a frame: no black screen on fallback or reconnect.
  function addVideo() {
    const v = document.createElement('video');
    v.muted = true;
    v.playsInline = true;
    v.setAttribute('playsinline', '');
    v.className = 'pending';
    stage.insertBefore(v, stage.firstChild);
    if (!viewer.video) viewer.video = v;
    return v;
  }

  function newSession(kind, video) {
    let settle;
    const s = {
      kind,
      video,
      pc: null,
      dead: false,
      lastStats: null,
      ended: new Promise((resolve) => { settle = resolve; }),
      stop() {}, // releases the network side; the last picture stays on screen
      async stats() { return s.lastStats; },
      // The source broke after it was on screen: the supervisor looks for a replacement.
      fail(reason) {
        if (s.dead) return;
        s.dead = true;
        report(kind, reason);
        s.stop();
        sessions.delete(s);
        settle(reason);
      },
      close() {
        s.dead = true;
        s.stop();
        sessions.delete(s);
        settle('closed');
        video.pause();
        video.srcObject = null;
        video.removeAttribute('src');
        video.load();
        video.remove();
        if (viewer.video === video) viewer.video = current && current !== s ? current.video : null;
      },
    };
    sessions.add(s);
    return s;
  }

  function adopt(s) {
    const old = current;
    current = s;
    s.video.className = 'live';
    viewer.video = s.video;
    viewer.pc = s.pc;
    setMode(s.kind);
    if (old && old !== s) old.close();
  }

  // ---------------------------------------------------------------- supervisor
  // One loop owns what is on screen: open a source in the preferred order, show it, wait until
  // it dies (or, on the LL-HLS fallback in auto mode, until WebRTC is back), repeat.
  async function supervise() {
    let order = ORDER[requested];
    let failures = 0;
    let next = null;
    for (;;) {
      let s = next;
      next = null;
      for (const kind of order) {
        if (s) break;
        try {
          s = kind === 'whep' ? await openWhep() : await openHls();
        } catch (e) {
          report(kind, e);
        }
      }
      if (!s) {
        setMode('failed');
        await sleep(RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]);
        order = ORDER[requested];
        setMode('connecting');
        continue;
      }
      failures = 0;
      adopt(s);
      const upgrade = requested === 'auto' && s.kind === 'hls' ? retryWhepBehind(s) : new Promise(() => {});
      next = await Promise.race([s.ended.then(() => null), upgrade]);
      if (next) continue;
      // The picture on screen froze; keep it (greyed) while the replacement connects. A WebRTC
      // drop in auto mode goes straight to LL-HLS: retrying WebRTC first would freeze for seconds.
      viewer.pc = null;
      setMode('connecting');
      order = requested === 'auto' && s.kind === 'whep' ? ['hls', 'whep'] : ORDER[requested];
    }
  }

  // While the LL-HLS fallback plays, try WebRTC now and then; resolves with a WebRTC session that
  // has a frame, or never if the fallback dies first.
  async function retryWhepBehind(hls) {
    for (let i = 0; ; i++) {
      await sleep(WHEP_RETRY_MS[Math.min(i, WHEP_RETRY_MS.length - 1)]);
      if (hls.dead) return new Promise(() => {});
      try {
        const s = await openWhep();
        if (!hls.dead) return s;
        s.close(); // the supervisor is already connecting something else
        return new Promise(() => {});
      } catch (e) {
        report('whep retry', e);
      }
    }
  }

  // ---------------------------------------------------------------- WebRTC (WHEP)
  async function openWhep() {
    const video = addVideo();
    // No STUN/TURN: viewer and table box share the LAN. max-bundle: one transport for video and
    // data channel, so one set of candidates to gather (and to trickle, if it comes to that).
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    const s = newSession('whep', video);
    s.pc = pc;
    s.resource = null;
    const timers = [];
    const lateCandidates = [];
    s.stop = () => {
      timers.forEach(clearInterval);
      pc.close();
      // keepalive lets the DELETE outlive the page on pagehide.
      if (s.resource) fetch(s.resource, { method: 'DELETE', keepalive: true }).catch(() => {});
      s.resource = null;
    };
    s.stats = async () => {
      if (pc.connectionState !== 'closed') s.lastStats = await whepStats(pc);
      return s.lastStats;
    };
    try {
      // The daemon encodes H.264 once for everybody; say so first in the offer.
      preferH264(pc.addTransceiver('video', { direction: 'recvonly' }));
      // Created before the offer so the SDP carries the data channel's m= section.
      const dc = pc.createDataChannel('croupier');
      dc.onmessage = (e) => onMessage(e.data);
      pc.ontrack = (e) => {
        video.srcObject = new MediaStream([e.track]);
        play(video);
      };
      pc.onicecandidate = (e) => {
        if (e.candidate && e.candidate.candidate) lateCandidates.push(e.candidate);
      };
      await pc.setLocalDescription(await pc.createOffer());
      await iceGathered(pc, ICE_GATHER_CAP_MS);
      // Whatever was gathered so far is in localDescription; only later ones need a PATCH.
      lateCandidates.length = 0;
      const res = await fetchOk(`/whep/${encodeURIComponent(camera)}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription.sdp,
      });
      const answer = await res.text();
      const where = res.headers.get('Location');
      if (where) s.resource = new URL(where, res.url).href;
      else report('whep', 'answer without Location: the session cannot be ended by DELETE');
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      trickleLate(s, lateCandidates);
      await Promise.race([firstPicture(video, WHEP_FIRST_FRAME_MS, 'WebRTC'), connectionFailure(pc)]);
      watchWhep(s, timers);
      return s;
    } catch (e) {
      s.close();
      throw e;
    }
  }

  function preferH264(transceiver) {
    if (!transceiver.setCodecPreferences || !RTCRtpReceiver.getCapabilities) return;
    const rank = (c) => {
      if (!/h264/i.test(c.mimeType)) return 3;
      const fmtp = c.sdpFmtpLine || '';
      if (!/packetization-mode=1/.test(fmtp)) return 2;
      return /profile-level-id=42e0/i.test(fmtp) ? 0 : 1; // constrained baseline, as encoded
    };
    const codecs = RTCRtpReceiver.getCapabilities('video').codecs.slice();
    transceiver.setCodecPreferences(codecs.sort((a, b) => rank(a) - rank(b)));
  }

  function iceGathered(pc, capMs) {
    return new Promise((resolve) => {
      const check = () => {
        if (pc.iceGatheringState !== 'complete') return;
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const timer = setTimeout(() => {
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      }, capMs);
      pc.addEventListener('icegatheringstatechange', check);
      check();
    });
  }

  // Candidates found after the POST (slow interface, gathering past the cap) reach the daemon by
  // PATCH application/trickle-ice-sdpfrag (RFC 8840); rare on a LAN, so one batch per second.
  function trickleLate(s, queue) {
    const pc = s.pc;
    const send = () => {
      if (!queue.length || !s.resource || s.dead) return;
      const sdp = pc.localDescription.sdp;
      const ufrag = (sdp.match(/a=ice-ufrag:(.*)/) || [])[1];
      const pwd = (sdp.match(/a=ice-pwd:(.*)/) || [])[1];
      // One "m= / a=mid / a=candidate…" block per media section the candidates belong to.
      const sections = sdp.split(/\r?\n(?=m=)/).slice(1);
      const mline = (mid) => {
        const sec = sections.find((x) => x.split(/\r?\n/).includes(`a=mid:${mid}`));
        return sec ? sec.split(/\r?\n/)[0] : 'm=video 9 UDP/TLS/RTP/SAVPF 0';
      };
      const lines = [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`];
      const byMid = new Map();
      for (const c of queue.splice(0)) byMid.set(c.sdpMid, [...(byMid.get(c.sdpMid) || []), c.candidate]);
      byMid.forEach((cands, mid) => lines.push(mline(mid), `a=mid:${mid}`, ...cands.map((c) => `a=${c}`)));
      if (pc.iceGatheringState === 'complete') lines.push('a=end-of-candidates');
      fetchOk(s.resource, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' },
        body: lines.join('\r\n') + '\r\n',
      }).catch((e) => report('whep trickle', e));
    };
    pc.onicecandidate = (e) => {
      if (e.candidate && e.candidate.candidate) queue.push(e.candidate);
      setTimeout(send, 1000);
    };
    send();
  }

  function connectionFailure(pc) {
    return new Promise((_, reject) => {
      const check = () => {
        if (pc.connectionState === 'failed') reject(new Error('ICE/DTLS connection failed'));
        else if (pc.connectionState === 'closed') reject(new Error('connection closed'));
      };
      pc.addEventListener('connectionstatechange', check);
    });
  }

  // After the first frame: a failed or long-disconnected connection, or frames that stop
  // although the connection looks fine (the daemon's pipeline died), end the session.
  function watchWhep(s, timers) {
    const pc = s.pc;
    let frames = -1;
    let lastNewFrame = performance.now();
    let disconnectedSince = null;
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed') s.fail('WebRTC connection failed');
    });
    timers.push(setInterval(async () => {
      if (s.dead) return;
      const now = performance.now();
      if (pc.connectionState === 'disconnected') {
        disconnectedSince = disconnectedSince || now;
        if (now - disconnectedSince > DISCONNECTED_GRACE_MS) s.fail('WebRTC disconnected');
      } else {
        disconnectedSince = null;
      }
      const st = await s.stats().catch(() => null);
      if (!st || s.dead) return;
      if (st.framesDecoded !== frames) {
        frames = st.framesDecoded;
        lastNewFrame = now;
      } else if (now - lastNewFrame > FROZEN_MS) {
        s.fail(`no new WebRTC frame for ${FROZEN_MS / 1000} s`);
      }
    }, 1000));
  }

  async function whepStats(pc) {
    const all = await pc.getStats();
    let inbound = null;
    let pair = null;
    all.forEach((x) => {
      if (x.type === 'inbound-rtp' && x.kind === 'video') inbound = x;
      else if (x.type === 'transport' && x.selectedCandidatePairId) pair = all.get(x.selectedCandidatePairId) || pair;
      else if (x.type === 'candidate-pair' && x.nominated && x.state === 'succeeded' && !pair) pair = x;
    });
    const i = inbound || {};
    return {
      mode: 'whep',
      framesDecoded: i.framesDecoded || 0,
      framesDropped: i.framesDropped || 0,
      freezeCount: i.freezeCount || 0,
      totalFreezesDuration: i.totalFreezesDuration || 0, // seconds
      framesPerSecond: i.framesPerSecond ?? null,
      jitter: i.jitter ?? null, // seconds
      packetsLost: i.packetsLost || 0,
      currentRoundTripTime: pair ? pair.currentRoundTripTime ?? null : null, // seconds
      // Time frames wait in the receiver before decoding: the browser's share of the latency.
      jitterBufferMs: i.jitterBufferEmittedCount ? (1000 * i.jitterBufferDelay) / i.jitterBufferEmittedCount : null,
    };
  }

  // ---------------------------------------------------------------- table messages
  function onMessage(data) {
    let msg = data;
    try {
      msg = JSON.parse(data);
    } catch (_) {
      report('datachannel', `not JSON: ${String(data).slice(0, 80)}`);
    }
    pushCapped(viewer.messages, msg, MAX_MESSAGES);
    if (msg && msg.type === 'table') {
      table = { msg, at: performance.now() };
      renderTable();
    }
  }

  function renderTable() {
    if (!table) return;
    const m = table.msg;
    const age = performance.now() - table.at;
    // Table data comes over the WebRTC data channel only: on the LL-HLS fallback it stops, and
    // after a while an old phase and countdown would mislead more than no overlay.
    tableEl.hidden = age > 10000;
    tableEl.dataset.phase = m.phase || '';
    // Between messages (about one a second) the countdown runs locally, so it moves smoothly;
    // the next message corrects it. The daemon's clock decides, this is only a display.
    let countdown = '';
    if (typeof m.countdown_ms === 'number') countdown = `${(Math.max(0, m.countdown_ms - age) / 1000).toFixed(1)} s`;
    field('phase').textContent = m.phase || '—';
    field('countdown').textContent = countdown;
    field('timecode').textContent = m.timecode || '';
    field('round').textContent = m.round_id || '';
    tableEl.classList.toggle('stale', age > 3000);
  }

  // ---------------------------------------------------------------- LL-HLS over MSE
  async function openHls() {
    const video = addVideo();
    const s = newSession('hls', video);
    const url = new URL(`/hls/${encodeURIComponent(camera)}/index.m3u8`, location.href).href;
    // iPhones have no MediaSource but play (LL-)HLS natively; nothing to measure there, though.
    const onfail = (reason) => s.fail(reason);
    const player = window.MediaSource ? new LlHlsPlayer(video, url, onfail) : nativeHls(video, url, onfail);
    s.stop = () => player.stop();
    s.stats = async () => (s.lastStats = player.stats());
    try {
      await player.start();
      return s;
    } catch (e) {
      s.close();
      throw e;
    }
  }

  function nativeHls(video, url, onfail) {
    return {
      async start() {
        video.src = url;
        video.addEventListener('error', () => onfail('native HLS playback error'));
        play(video);
        await firstPicture(video, HLS_FIRST_FRAME_MS, 'native HLS');
      },
      stop() {},
      stats() {
        const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
        return {
          mode: 'hls',
          framesDecoded: q ? q.totalVideoFrames : 0,
          framesDropped: q ? q.droppedVideoFrames : 0,
          currentTime: video.currentTime,
          bufferedEnd: null,
          latencyMs: null,
          freezeCount: 0,
          totalFreezesDuration: 0,
        };
      },
    };
  }

  // Parses a media playlist into segments (the last one possibly still growing, with parts only).
  function parsePlaylist(text, base) {
    const lines = text.split(/\r?\n/);
    if (lines[0].trim() !== '#EXTM3U') throw new Error('playlist does not start with #EXTM3U');
    const pl = {
      targetDuration: 2,
      mediaSequence: 0,
      partTarget: null,
      canBlockReload: false,
      partHoldBack: null,
      endList: false,
      independentTagged: false, // whether any part says INDEPENDENT=YES at all
      segments: [],
    };
    const resolve = (uri) => new URL(uri, base).href;
    let map = null;
    let seg = { parts: [], discontinuity: false, pdt: null };
    for (const raw of lines) {
      const line = raw.trim();
      if (!line) continue;
      if (!line.startsWith('#')) {
        Object.assign(seg, { uri: resolve(line), map, complete: true });
        pl.segments.push(seg);
        seg = { parts: [], discontinuity: false, pdt: null };
        continue;
      }
      const colon = line.indexOf(':');
      const tag = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1);
      const attrs = () => parseAttributes(value);
      switch (tag) {
        case '#EXT-X-TARGETDURATION': pl.targetDuration = Number(value); break;
        case '#EXT-X-MEDIA-SEQUENCE': pl.mediaSequence = Number(value); break;
        case '#EXT-X-PART-INF': pl.partTarget = Number(attrs()['PART-TARGET']); break;
        case '#EXT-X-SERVER-CONTROL': {
          const a = attrs();
          pl.canBlockReload = a['CAN-BLOCK-RELOAD'] === 'YES';
          if (a['PART-HOLD-BACK']) pl.partHoldBack = Number(a['PART-HOLD-BACK']);
          break;
        }
        case '#EXT-X-MAP': map = resolve(attrs().URI); break;
        case '#EXT-X-DISCONTINUITY': seg.discontinuity = true; break;
        case '#EXT-X-PROGRAM-DATE-TIME': seg.pdt = parseDate(value); break;
        case '#EXTINF': seg.duration = parseFloat(value); break;
        case '#EXT-X-ENDLIST': pl.endList = true; break;
        case '#EXT-X-PART': {
          const a = attrs();
          const independent = a.INDEPENDENT === 'YES';
          pl.independentTagged = pl.independentTagged || independent;
          seg.parts.push({ uri: resolve(a.URI), duration: Number(a.DURATION), independent });
          break;
        }
        default: break; // PRELOAD-HINT, DISCONTINUITY-SEQUENCE, …: not needed to play
      }
    }
    if (seg.parts.length) pl.segments.push(Object.assign(seg, { map, complete: false }));
    pl.segments.forEach((s, i) => {
      s.msn = pl.mediaSequence + i;
      const prev = pl.segments[i - 1];
      // A segment without its own date continues the previous one, as RFC 8216bis allows.
      if (s.pdt == null && prev && prev.pdt != null && !s.discontinuity) s.pdt = prev.pdt + 1000 * (prev.duration || 0);
    });
    return pl;
  }

  function parseAttributes(text) {
    const out = {};
    const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
    let m;
    while ((m = re.exec(text))) out[m[1]] = m[2].replace(/^"|"$/g, '');
    return out;
  }

  // Date.parse keeps milliseconds only in its documented format; keep any sub-millisecond digits.
  function parseDate(text) {
    const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$/.exec(text.trim());
    if (!m) return null;
    const ms = Date.parse(m[1] + (m[3] || 'Z')) + (m[2] ? parseFloat(m[2]) * 1000 : 0);
    return Number.isFinite(ms) ? ms : null;
  }

  // The playable units in order: the parts of segments that list parts, whole segments otherwise.
  function units(pl) {
    const out = [];
    for (const seg of pl.segments) {
      const base = { msn: seg.msn, map: seg.map };
      if (seg.parts.length) {
        let offset = 0;
        seg.parts.forEach((p, i) => {
          out.push({
            ...base,
            part: i,
            uri: p.uri,
            independent: p.independent || (!pl.independentTagged && i === 0),
            discontinuity: seg.discontinuity && i === 0,
            pdt: seg.pdt == null ? null : seg.pdt + offset * 1000,
            last: seg.complete && i === seg.parts.length - 1,
          });
          offset += p.duration;
        });
      } else if (seg.complete) {
        const whole = { part: -1, uri: seg.uri, independent: true, discontinuity: seg.discontinuity, pdt: seg.pdt };
        out.push({ ...base, ...whole, last: true });
      }
    }
    return out;
  }

  const isAfter = (u, pos) => u.msn > pos.msn || (u.msn === pos.msn && pos.part >= 0 && u.part > pos.part);

  // Reads /hls/<camera>/index.m3u8 the LL-HLS way: join at the newest keyframe part a little
  // behind the live edge, append every later part in order, and learn of each next part with a
  // blocking playlist reload. Media times are laid end to end (SourceBuffer mode 'sequence'), so
  // a camera restart needs only its new init segment appended, no timestamp arithmetic.
  class LlHlsPlayer {
    constructor(video, url, onfail) {
      this.video = video;
      this.url = url;
      this.onfail = onfail;
      this.abort = new AbortController();
      this.stopped = false;
      this.started = false;
      this.ms = null;
      this.sb = null;
      this.codec = null;
      this.map = null; // URI of the init segment the SourceBuffer has
      this.pos = null; // the last unit appended
      this.live = true;
      this.positioned = false;
      this.liveTarget = 1; // seconds of buffer kept ahead of the playhead
      this.partTarget = 0.5;
      this.chunks = []; // { from, to, pdt }: media time → UTC, for the latency figure
      this.stalls = 0;
      this.stallSince = null;
      this.stalledMs = 0;
      this.timer = null;
    }

    async start() {
      this.ms = new MediaSource();
      this.video.src = URL.createObjectURL(this.ms);
      await once(this.ms, 'sourceopen');
      URL.revokeObjectURL(this.video.src);
      this.video.addEventListener('waiting', () => this.onWaiting());
      this.video.addEventListener('playing', () => this.onPlaying());
      this.video.addEventListener('ended', () => this.onfail('end of stream (EXT-X-ENDLIST)'));
      this.timer = setInterval(() => this.tick(), 250);
      play(this.video);
      const picture = firstPicture(this.video, HLS_FIRST_FRAME_MS, 'LL-HLS');
      const running = this.run();
      running.catch((e) => {
        if (this.started && !this.stopped) this.onfail(e.message || String(e));
      });
      await Promise.race([picture, running.then(() => picture)]);
      this.started = true;
    }

    stop() {
      if (this.stopped) return;
      this.stopped = true;
      this.abort.abort(new Error('stopped'));
      clearInterval(this.timer);
      viewer.hls.latencyMs = null; // a figure for a stream no longer playing would mislead
      try {
        if (this.ms.readyState === 'open' && !this.sb.updating) this.ms.endOfStream();
      } catch (_) { /* already ended or closed: nothing to release */ }
    }

    async run() {
      let pl = await this.playlist('');
      let todo = this.joinPoint(pl);
      for (;;) {
        for (const u of todo) {
          if (this.stopped) return;
          await this.append(u);
          this.pos = u;
        }
        if (this.pos && !this.positioned) this.seekToLive();
        if (pl.endList) {
          if (this.ms.readyState === 'open') this.ms.endOfStream();
          return;
        }
        pl = await this.reload(pl);
        const list = units(pl);
        if (!this.pos) {
          todo = this.joinPoint(pl);
        } else if (!list.length || list[0].msn > this.pos.msn + 1 || list[list.length - 1].msn < this.pos.msn) {
          // We fell out of the playlist's window, or the daemon restarted and its sequence
          // numbers began again: join afresh at the live edge.
          const has = list.length ? `${list[0].msn}–${list[list.length - 1].msn}` : 'nothing';
          report('hls', `resync at the live edge (had segment ${this.pos.msn}, playlist has ${has})`);
          viewer.hls.discontinuities++;
          this.map = null;
          this.positioned = false;
          todo = this.joinPoint(pl);
        } else {
          todo = list.filter((u) => isAfter(u, this.pos));
        }
        // A server answering a blocking reload with nothing new must not make us spin.
        if (!todo.length) await sleep(250 * this.partTarget);
      }
    }

    // The newest independent unit at least one unit behind the edge (a live join), or the first
    // one of a finished (VOD) playlist.
    joinPoint(pl) {
      const list = units(pl);
      if (pl.endList) return list;
      let i = list.length - 2;
      while (i > 0 && !list[i].independent) i--;
      return list.slice(Math.max(i, 0));
    }

    async playlist(query, timeoutMs = 10000) {
      const res = await fetchOk(this.url + query, { signal: this.abort.signal, timeoutMs, cache: 'no-store' });
      const pl = parsePlaylist(await res.text(), res.url);
      this.live = !pl.endList;
      if (pl.partTarget) this.partTarget = pl.partTarget;
      if (!this.positioned) {
        // Keep 1.5 parts plus a margin for the fetch ahead of the playhead; never more than the
        // daemon's PART-HOLD-BACK. Stalls raise it (onWaiting).
        const target = Math.max(0.5, 1.5 * this.partTarget + 0.3);
        this.liveTarget = Math.max(this.liveTarget, pl.partHoldBack ? Math.min(target, pl.partHoldBack) : target);
      }
      return pl;
    }

    // Blocking reload for the part after the last one appended. The daemon holds it until that
    // part exists (at most three target durations, then 503), so our deadline is longer.
    async reload(pl) {
      if (!pl.canBlockReload || !this.pos) {
        await sleep(1000 * (pl.partTarget || pl.targetDuration / 2));
        return this.playlist('');
      }
      const nextSegment = this.pos.part < 0 || this.pos.last;
      const msn = nextSegment ? this.pos.msn + 1 : this.pos.msn;
      const part = nextSegment ? 0 : this.pos.part + 1;
      const query = pl.partTarget ? `?_HLS_msn=${msn}&_HLS_part=${part}` : `?_HLS_msn=${msn}`;
      const holdMs = 1000 * (3 * pl.targetDuration + 3);
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.playlist(query, holdMs);
        } catch (e) {
          if (this.stopped) throw e;
          // 400: our position is nonsense to the daemon (it restarted); a plain reload resyncs.
          if (e.status === 400) return this.playlist('');
          if (attempt >= 2) throw e;
          await sleep(500);
        }
      }
    }

    async get(uri) {
      const res = await fetchOk(uri, { signal: this.abort.signal });
      return res.arrayBuffer();
    }

    async append(u) {
      // A discontinuity may bring a new encoder with new SPS/PPS under the same init name.
      if (u.map !== this.map || (u.discontinuity && this.pos)) await this.loadInit(u.map);
      if (u.discontinuity && this.pos) viewer.hls.discontinuities++;
      const data = await this.get(u.uri);
      const from = this.bufferedEnd();
      await this.sbAppend(data);
      const to = this.bufferedEnd();
      if (u.pdt != null && to > from) this.chunks.push({ from, to, pdt: u.pdt });
      viewer.hls.partsAppended++;
      await this.trim(KEEP_BEHIND_S);
    }

    async loadInit(uri) {
      if (!uri) throw new Error('playlist has no EXT-X-MAP (fMP4 init segment)');
      const init = await this.get(uri);
      let codec = avcCodec(init);
      if (!codec) {
        codec = 'avc1.42E01F'; // what the daemon encodes; better a try than no picture
        report('hls', `no avcC box in ${shortUrl(uri)}, assuming ${codec}`);
      }
      const type = `video/mp4; codecs="${codec}"`;
      if (!MediaSource.isTypeSupported(type)) throw new Error(`this browser cannot play ${type}`);
      if (!this.sb) {
        this.sb = this.ms.addSourceBuffer(type);
        this.sb.mode = 'sequence';
      } else if (codec !== this.codec && this.sb.changeType) {
        this.sb.changeType(type);
      }
      this.codec = codec;
      await this.sbAppend(init);
      this.map = uri;
    }

    bufferedEnd() {
      const b = this.sb ? this.sb.buffered : null;
      return b && b.length ? b.end(b.length - 1) : 0;
    }

    async sbAppend(data) {
      try {
        await this.sbOp(() => this.sb.appendBuffer(data));
      } catch (e) {
        if (e.name !== 'QuotaExceededError') throw e;
        await this.trim(2); // memory is short: keep only what is about to play, then retry once
        await this.sbOp(() => this.sb.appendBuffer(data));
      }
    }

    // Runs one SourceBuffer operation and waits for it; a decoder that rejects the data ends the
    // session (the supervisor reconnects) rather than leaving a silent frozen picture.
    sbOp(start) {
      const sb = this.sb;
      return new Promise((resolve, reject) => {
        const done = (err) => {
          sb.removeEventListener('updateend', ok);
          sb.removeEventListener('error', bad);
          if (err) reject(err);
          else resolve();
        };
        const ok = () => done();
        const why = () => (this.video.error ? `: ${this.video.error.message}` : '');
        const bad = () => done(new Error(`media decode error${why()}`));
        sb.addEventListener('updateend', ok);
        sb.addEventListener('error', bad);
        try {
          start();
        } catch (e) {
          done(e);
        }
      });
    }

    async trim(keepS) {
      const b = this.sb.buffered;
      if (!b.length) return;
      const cut = this.video.currentTime - keepS;
      // Hysteresis: remove in 5 s steps rather than after every part.
      const slack = keepS === KEEP_BEHIND_S ? 5 : 0;
      if (b.start(0) < cut - slack) await this.sbOp(() => this.sb.remove(0, cut));
      this.chunks = this.chunks.filter((c) => c.to > cut);
    }

    seekToLive() {
      const b = this.video.buffered;
      if (!b.length) return;
      const end = b.end(b.length - 1);
      if (this.live) this.video.currentTime = Math.max(b.start(b.length - 1), end - this.liveTarget);
      this.positioned = true;
    }

    // Four times a second: hold the distance to the live edge, step over gaps, update latency.
    tick() {
      const v = this.video;
      const b = v.buffered;
      if (!b.length || !this.positioned) return;
      const end = b.end(b.length - 1);
      const t = v.currentTime;
      // Stuck before a later buffered range (a join or resync left a hole): jump it.
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) > t && b.start(i) - t < 2 && (i === 0 || b.end(i - 1) <= t + 0.05)) {
          if (v.readyState < HTMLMediaElement.HAVE_FUTURE_DATA) v.currentTime = b.start(i) + 0.01;
          break;
        }
      }
      if (this.live) {
        const behind = end - t;
        if (behind > this.liveTarget + 2) {
          v.currentTime = end - this.liveTarget; // far behind: jump
          v.playbackRate = 1;
        } else if (behind > this.liveTarget + 0.5) {
          v.playbackRate = 1.1; // a little behind: catch up unnoticed
        } else if (behind <= this.liveTarget) {
          v.playbackRate = 1;
        }
      }
      viewer.hls.latencyMs = this.latency();
      // The daemon stopped producing parts (camera or pipeline down): give the supervisor a
      // chance at another source instead of waiting out the blocking-reload retries.
      if (this.stallSince != null && performance.now() - this.stallSince > FROZEN_MS * 2) {
        this.onfail(`LL-HLS playback stalled for ${(FROZEN_MS * 2) / 1000} s`);
      }
    }

    latency() {
      const t = this.video.currentTime;
      for (let i = this.chunks.length - 1; i >= 0; i--) {
        const c = this.chunks[i];
        if (t >= c.from - 0.02 && t <= c.to + 0.02) return Math.round(Date.now() - (c.pdt + (t - c.from) * 1000));
      }
      return null;
    }

    onWaiting() {
      // Our own seeks (joining, chasing the edge) wait briefly too; they are not stalls.
      if (!this.started || this.stallSince != null || this.video.seeking) return;
      this.stalls++;
      this.stallSince = performance.now();
      // Ran dry: the parts arrive less evenly than we assumed; keep more ahead (at most 3 s).
      if (this.live) this.liveTarget = Math.min(3, this.liveTarget + this.partTarget / 2);
    }

    onPlaying() {
      if (this.stallSince == null) return;
      this.stalledMs += performance.now() - this.stallSince;
      this.stallSince = null;
    }

    stats() {
      const v = this.video;
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
      const stalled = this.stalledMs + (this.stallSince != null ? performance.now() - this.stallSince : 0);
      return {
        mode: 'hls',
        framesDecoded: q ? q.totalVideoFrames : 0,
        framesDropped: q ? q.droppedVideoFrames : 0,
        currentTime: v.currentTime,
        bufferedEnd: v.buffered.length ? v.buffered.end(v.buffered.length - 1) : null,
        latencyMs: this.latency(),
        freezeCount: this.stalls, // playback stalls after the first frame
        totalFreezesDuration: stalled / 1000, // seconds, like WebRTC's
        liveTargetS: this.liveTarget,
      };
    }
  }

  // The codec string MSE needs, from the init segment's avcC box
  // (moov/trak/mdia/minf/stbl/stsd/avc1|avc3/avcC): "avc1.PPCCLL" = profile, constraints, level.
  function avcCodec(buffer) {
    const dv = new DataView(buffer);
    const fourcc = (p) => String.fromCharCode(...new Uint8Array(buffer, p, 4));
    const hex = (p) => dv.getUint8(p).toString(16).toUpperCase().padStart(2, '0');
    const path = ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd'];
    function search(start, end, depth, entry) {
      let p = start;
      while (p + 8 <= end) {
        let size = dv.getUint32(p);
        const type = fourcc(p + 4);
        let header = 8;
        if (size === 1 && p + 16 <= end) {
          size = Number(dv.getBigUint64(p + 8));
          header = 16;
        } else if (size === 0) {
          size = end - p;
        }
        if (size < header || p + size > end) return null; // truncated or corrupt: give up
        const body = p + header;
        if (depth < path.length && type === path[depth]) {
          // stsd has version/flags and an entry count before its sample entries.
          const found = search(type === 'stsd' ? body + 8 : body, p + size, depth + 1, null);
          if (found) return found;
        } else if (depth === path.length && (type === 'avc1' || type === 'avc3')) {
          // A visual sample entry has 78 bytes of fixed fields before its child boxes.
          const found = search(body + 78, p + size, depth + 1, type);
          if (found) return found;
        } else if (depth === path.length + 1 && type === 'avcC' && size >= header + 4) {
          return `${entry}.${hex(body + 1)}${hex(body + 2)}${hex(body + 3)}`;
        }
        p += size;
      }
      return null;
    }
    return search(0, dv.byteLength, 0, null);
  }

  // ---------------------------------------------------------------- status line
  function renderStatus() {
    let text;
    switch (viewer.mode) {
      case 'whep': {
        const st = current && current.lastStats;
        text = 'WebRTC';
        if (st && st.currentRoundTripTime != null) text += ` · RTT ${Math.round(st.currentRoundTripTime * 1000)} ms`;
        if (st && st.jitterBufferMs != null) text += ` · buffer ${Math.round(st.jitterBufferMs)} ms`;
        if (st && st.framesPerSecond != null) text += ` · ${Math.round(st.framesPerSecond)} fps`;
        break;
      }
      case 'hls':
        text = requested === 'auto' ? 'LL-HLS fallback' : 'LL-HLS';
        if (viewer.hls.latencyMs != null) text += ` · latency ${(viewer.hls.latencyMs / 1000).toFixed(2)} s`;
        break;
      case 'failed':
        text = `No video: ${lastError} · retrying`;
        break;
      default:
        text = current ? 'Reconnecting…' : 'Connecting…';
    }
    statusEl.textContent = `${camera} · ${autoplayRefused ? 'click to start the video · ' : ''}${text}`;
    statusEl.dataset.mode = viewer.mode;
  }

  // ---------------------------------------------------------------- start
  document.title = `${camera} · Croupier`;
  // End every WebRTC session with DELETE when the page goes away, so the daemon frees the
  // encoder branch at once instead of waiting for ICE to time out.
  addEventListener('pagehide', () => sessions.forEach((s) => s.stop()));
  // Coming back from the back/forward cache, those sessions are gone: start over.
  addEventListener('pageshow', (e) => { if (e.persisted) location.reload(); });
  setInterval(renderTable, 100);
  setInterval(() => {
    if (current && !current.dead && viewer.mode === 'whep') current.stats().catch(() => {});
    renderStatus();
  }, 500);
  renderStatus();
  supervise();
})();
