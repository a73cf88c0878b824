"""The evidence report as one self-contained HTML page.

Everything is inside the file: CSS, a small script, the timeline (SVG written here, since it must
react to clicks) and the calibration plots (matplotlib SVG, :mod:`audiotools.report.plots`). No
font, script or image comes from the network, so the page opens from ``file://`` offline. The
audio is referenced by a relative path (or embedded as a ``data:`` URI with ``--embed-audio``).

The page is rendered on the server side (all text is in the HTML, no client-side templating): it
reads without the script and prints as it looks (print CSS: no player, no buttons, page breaks
between sections kept tidy), so the browser's "save as PDF" gives a usable PDF. The script only
adds the interaction: clicking a word, a timestamp or the timeline seeks the audio there and plays;
the word being spoken and the timeline's playhead follow the audio.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from urllib.parse import unquote

from audiotools.report.build import LOW_CONFIDENCE
from audiotools.speakers.verification import lr_text

PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#393b79",
    "#637939",
]
TL_X0, TL_W = 120.0, 1000.0  # timeline: label column, then the time axis (SVG user units)
WAVE_H, LANE_H = 64.0, 20.0
STATUS_WORDS = {"ok": "OK", "fail": "FAILED", "skip": "not checked", "info": "recorded"}

CSS = """
:root{--fg:#1b1b1b;--mut:#5a5a5a;--line:#d8d8d8;--ok:#17703a;--bad:#b3261e;--bg2:#f5f6f8}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",Arial,sans-serif;color:var(--fg);
 margin:0 auto;max-width:1180px;padding:18px 22px 60px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:26px 0 8px;border-bottom:2px solid var(--line);
 padding-bottom:3px} h3{font-size:15px;margin:16px 0 6px}
.meta{color:var(--mut);font-size:13px} code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;
 font-size:12px;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:6px 0} th,td{border-bottom:1px solid var(--line);padding:4px 7px;
 text-align:left;vertical-align:top} th{background:var(--bg2);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.st{font-weight:700;white-space:nowrap} .st.ok{color:var(--ok)} .st.fail{color:var(--bad)}
.st.skip,.st.info{color:var(--mut)}
.banner{padding:10px 14px;border-radius:6px;margin:12px 0;font-weight:600}
.banner.ok{background:#e6f4ea;color:var(--ok);border:1px solid #a8d5b5}
.banner.fail{background:#fde8e7;color:var(--bad);border:1px solid #f1b0ab}
.banner.warn{background:#fff4e0;color:#8a5300;border:1px solid #f0c987}
.differs{display:block;color:var(--bad);font-size:.9em;margin-top:2px}
.bad{color:var(--bad)}
.player{position:sticky;top:0;background:#fff;padding:6px 0;z-index:5;border-bottom:1px solid var(--line)}
.player audio{width:100%;display:block} .note{color:var(--mut);font-size:12.5px}
.player.failed .note{display:none}
.audio-error{color:var(--bad);background:#fde8e7;border:1px solid #f1b0ab;border-radius:4px;padding:4px 8px;
 margin:4px 0 0;font-size:13px;font-weight:600}
html{scroll-padding-top:calc(var(--player-h,70px) + 6px)}
section,h2,h3,.comp{scroll-margin-top:calc(var(--player-h,70px) + 6px)}
[data-s]{cursor:pointer}
[data-s]:focus-visible,svg.timeline:focus-visible,summary:focus-visible{outline:2px solid #1a56db;outline-offset:1px}
pre{overflow-x:auto;max-width:100%}
svg.timeline{width:100%;height:auto;cursor:pointer;display:block;background:#fff}
svg.timeline text{font:11px system-ui,Arial,sans-serif;fill:#333}
.legend span{display:inline-block;margin-right:14px;font-size:12.5px}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.seg{display:grid;grid-template-columns:92px minmax(0,1fr);gap:2px 10px;padding:5px 0 5px 8px;
 border-left:4px solid var(--c);margin:4px 0;break-inside:avoid}
.seg .ts{color:var(--mut);font-variant-numeric:tabular-nums;cursor:pointer;font-size:12.5px}
.seg .spk{font-weight:600;color:var(--c);font-size:12.5px}
.seg p{margin:0;grid-column:2}
.w{cursor:pointer;border-radius:2px} .w:hover{background:#e8eefc}
.w.lc,.lc-sample{text-decoration:underline dotted #b36b00 2px;text-underline-offset:3px;background:#fff4df}
.w.m{background:#eee;color:#555;letter-spacing:1px}
.w.now{background:#ffe066}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:10px} svg.plot{width:100%;height:auto}
.comp{border:1px solid var(--line);border-radius:6px;padding:8px 14px;margin:12px 0;break-inside:avoid-page}
.verbal{background:var(--bg2);padding:8px 10px;border-radius:4px}
ul.lim li{margin:3px 0}
details summary{cursor:pointer;color:var(--mut)}
@media screen and (max-width:760px){
 body{padding:10px 10px 40px} p,li,h3,.note{overflow-wrap:break-word}
 table{display:block;overflow-x:auto;max-width:100%} table>tbody{display:table;width:100%}
 table:has(tr>:nth-child(5))>tbody{min-width:60em}
 .plots{grid-template-columns:minmax(0,1fr)}
 .seg{grid-template-columns:auto minmax(0,1fr)} .seg p{grid-column:1/-1}
 .player{padding:3px 0} .player audio{height:36px}
 .player .note{font-size:11.5px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
}
@media print{
 body{max-width:none;padding:0;font-size:11.5px} .player,.noprint{display:none!important}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 h2{break-after:avoid} tr,.seg,.comp,svg{break-inside:avoid} a{color:inherit;text-decoration:none}
 details::details-content{content-visibility:visible;display:block} details>summary{display:block}
 .w.now{background:none} [data-s]{cursor:auto}
}
"""

SCRIPT = """
(function(){
 var audio=document.getElementById('audio'),player=document.querySelector('.player'),root=document.documentElement;
 /* print shows every folded block: open the closed <details> while printing, then fold them again */
 window.addEventListener('beforeprint',function(){
   Array.prototype.forEach.call(document.querySelectorAll('details:not([open])'),function(d){
     d.setAttribute('data-print-opened',''); d.open=true;});
 });
 window.addEventListener('afterprint',function(){
   Array.prototype.forEach.call(document.querySelectorAll('details[data-print-opened]'),function(d){
     d.removeAttribute('data-print-opened'); d.open=false;});
 });
 /* the sticky player's height, so that jumps to a section stop below it */
 function fit(){ if(player)root.style.setProperty('--player-h',player.offsetHeight+'px'); }
 fit(); window.addEventListener('resize',fit);
 if(player&&window.ResizeObserver){new ResizeObserver(fit).observe(player);}
 /* a recording that cannot be loaded (report moved away from it) says so beside the player */
 var err=document.getElementById('audio-error');
 function failed(){
   if(!err||!err.hidden)return;
   var abs=err.querySelector('.tried-abs'),u=audio?(audio.currentSrc||audio.src||''):'';
   if(abs&&u.indexOf('file:')===0){try{abs.textContent=' ('+decodeURIComponent(new URL(u).pathname)+')';}catch(e){}}
   err.hidden=false; if(player)player.classList.add('failed'); fit();
 }
 if(audio){audio.addEventListener('error',failed); if(audio.error)failed();}
 function seek(t,play){ if(!audio)return; if(audio.error){failed();return;} try{audio.currentTime=t;}catch(e){}
   if(play){var p=audio.play(); if(p&&p.catch)p.catch(function(){});} }
 document.addEventListener('click',function(ev){
   var el=ev.target.closest('[data-s]'); if(el){seek(parseFloat(el.getAttribute('data-s')),true);}
 });
 /* keyboard: every timestamp (segments, evidence turns) is a button; words stay mouse targets, the
    timestamp before them is their keyboard route; the timeline is a slider */
 if(audio){
   Array.prototype.forEach.call(document.querySelectorAll('.ts[data-s],td[data-s]'),function(el){
     el.tabIndex=0; el.setAttribute('role','button');
     el.setAttribute('aria-label','play from '+el.textContent.split('\\u2013')[0]);
   });
   document.addEventListener('keydown',function(ev){
     var el=ev.target;
     if((ev.key==='Enter'||ev.key===' ')&&el&&el.matches&&el.matches('[data-s][role=button]')){
       ev.preventDefault(); seek(parseFloat(el.getAttribute('data-s')),true);
     }
   });
 }
 function fmt(t){var m=Math.floor(t/60),s=t-60*m; return m+':'+(s<10?'0':'')+s.toFixed(1);}
 var tl=document.getElementById('timeline');
 if(tl){
   var dur=parseFloat(tl.getAttribute('data-duration')),x0=parseFloat(tl.getAttribute('data-x0')),
       w=parseFloat(tl.getAttribute('data-w')),head=document.getElementById('playhead');
   tl.addEventListener('click',function(ev){
     var pt=tl.createSVGPoint(); pt.x=ev.clientX; pt.y=ev.clientY;
     var p=pt.matrixTransform(tl.getScreenCTM().inverse());
     var t=Math.min(Math.max((p.x-x0)/w*dur,0),dur); seek(t,true);
   });
   if(audio){
     tl.setAttribute('tabindex','0'); tl.setAttribute('role','slider');
     tl.setAttribute('aria-label','position in the recording: arrow keys move 5 s (page keys 30 s), '+
       'Enter or Space plays or pauses');
     tl.setAttribute('aria-valuemin','0'); tl.setAttribute('aria-valuemax',dur.toFixed(1));
     var mark=function(t){tl.setAttribute('aria-valuenow',t.toFixed(1)); tl.setAttribute('aria-valuetext',fmt(t));};
     mark(0);
     tl.addEventListener('keydown',function(ev){
       var t=audio.currentTime||0,k=ev.key,
           step={ArrowRight:5,ArrowUp:5,ArrowLeft:-5,ArrowDown:-5,PageUp:30,PageDown:-30}[k];
       if(step!==undefined){t=Math.min(Math.max(t+step,0),dur);}
       else if(k==='Home'){t=0;} else if(k==='End'){t=dur;}
       else if(k==='Enter'||k===' '){ev.preventDefault(); if(audio.error){failed();return;}
         if(audio.paused){seek(t,true);}else{audio.pause();} return;}
       else return;
       ev.preventDefault(); seek(t,false); mark(t);  /* at once: timeupdate can come late */
     });
     audio.addEventListener('timeupdate',function(){mark(audio.currentTime);});
   }
   if(audio&&head){audio.addEventListener('timeupdate',function(){
     var x=x0+Math.min(audio.currentTime/dur,1)*w; head.setAttribute('x1',x); head.setAttribute('x2',x);});}
 }
 var words=Array.prototype.slice.call(document.querySelectorAll('.w[data-s]'));
 var starts=words.map(function(e){return parseFloat(e.getAttribute('data-s'));});
 var cur=null;
 if(audio){audio.addEventListener('timeupdate',function(){
   var t=audio.currentTime,lo=0,hi=starts.length-1,k=-1;
   while(lo<=hi){var mid=(lo+hi)>>1; if(starts[mid]<=t){k=mid;lo=mid+1;}else{hi=mid-1;}}
   var el=k>=0?words[k]:null; if(el!==cur){if(cur)cur.classList.remove('now'); if(el)el.classList.add('now'); cur=el;}
 });}
})();
"""


def _e(x) -> str:
    return escape("" if x is None else str(x), quote=True)


def _t(t: float) -> str:
    t = max(0.0, float(t))
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{s:04.1f}" if h else f"{int(m)}:{s:04.1f}"


def _num(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def colours(model: dict) -> dict[str, str]:
    names = [name for name, _ in model.get("lanes") or []]
    for s in model.get("segments") or []:
        if s.get("speaker") and str(s["speaker"]) not in names:
            names.append(str(s["speaker"]))
    for sp in model.get("speakers") or []:
        if sp["lane"] not in names:
            names.append(sp["lane"])
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


# ----------------------------------------------------------------------------------------- sections
def _header(m: dict) -> str:
    kind = {
        "transcript": "transcript",
        "verification": "speaker verification",
        "identification": "speaker identification",
    }[m["kind"]]
    rows = [("recording", m["title"]), ("report type", kind)]
    if m.get("case_id"):
        rows.append(("case", m["case_id"]))
    if m.get("examiner"):
        rows.append(("examiner", m["examiner"]))
    if m.get("source_json"):
        rows.append(("transcript file", m["source_json"]))
    rows.append(("report made", f"{m['made']} by audiotools {(m['integrity'].get('tool') or {}).get('version', '')}"))
    meta = " · ".join(f"{_e(k)}: <b>{_e(v)}</b>" for k, v in rows)
    integ = m["integrity"]
    sig = next((c for c in integ["checks"] if c["name"] == "signature"), None)
    if integ["ok"] and sig is not None and sig["status"] != "ok":
        # what `provenance verify` calls exit 3: intact, but nothing shows who made it
        n = sum(1 for c in integ["checks"] if c["status"] == "ok")
        who = "signed by a key nobody vouched for" if integ.get("signature") else "not signed"
        banner = (
            f'<div class="banner warn" id="integrity-banner">Integrity: OK, NOT AUTHENTICATED: {n} check(s) '
            f"passed when this report was made, but the transcript is {who}: anyone who edits it can "
            "recompute its hashes. Only a signature checked against a key you trust (--public-key) "
            "shows who made it.</div>"
        )
    elif integ["ok"]:
        n = sum(1 for c in integ["checks"] if c["status"] == "ok")
        authenticated = " and signed by the trusted key" if sig is not None else ""
        banner = (
            f'<div class="banner ok" id="integrity-banner">Integrity: OK: {n} check(s) passed{authenticated} '
            "when this report was made</div>"
        )
    else:
        banner = (
            '<div class="banner fail" id="integrity-banner">Integrity: FAILED: '
            + _e(", ".join(integ["failed"]))
            + " (details below)</div>"
        )
    return f"<header><h1>Evidence report</h1><div class='meta'>{meta}</div>{banner}</header>"


def _integrity(m: dict) -> str:
    integ = m["integrity"]
    rows = "".join(
        f"<tr class='check' data-status='{_e(c['status'])}'><td>{_e(c['name'])}</td>"
        f"<td class='st {_e(c['status'])}'>{STATUS_WORDS.get(c['status'], c['status'])}</td>"
        f"<td class='mono'>{_e(c['detail'])}</td></tr>"
        for c in integ["checks"]
    )
    sig = integ.get("signature")
    if sig:
        sig_txt = (
            f"signed ({_e(sig.get('algorithm'))}), key fingerprint <code>{_e(sig.get('key_id'))}</code> "
            f"(first 16 hex of sha256 of the public key <code>{_e(sig.get('public_key'))}</code>); the status row "
            "'signature' above says whether it verifies. A signature proves control of that key: compare the "
            "fingerprint with the one you trust."
        )
    else:
        sig_txt = "not signed"
    hashes = []
    for k, label in (
        ("source_sha256", "source file sha256"),
        ("pcm_sha256", "decoded PCM sha256"),
        ("transcript_sha256", "transcript sha256"),
    ):
        if integ.get(k):
            hashes.append(f"<tr><td>{label}</td><td class='mono'>{_e(integ[k])}</td></tr>")
    models = "".join(
        f"<tr><td>{_e(x.get('role'))}</td><td>{_e(x.get('name'))}</td><td class='mono'>{_e(x.get('sha256'))}</td></tr>"
        for x in integ.get("models") or []
        if isinstance(x, dict)
    )
    tool = integ.get("tool") or {}
    params = json.dumps(integ.get("parameters"), indent=1, ensure_ascii=False, sort_keys=True)
    return (
        "<section id='integrity'><h2>1. Integrity</h2>"
        "<p class='note'>Re-verified when this report was made, with the same code as "
        "<code>audiotools provenance verify</code>: OK / FAILED per check, with what failed; "
        "a hash made for this report with nothing recorded earlier to compare it with is <i>recorded</i>.</p>"
        f"<table><tr><th>check</th><th>status</th><th>detail</th></tr>{rows}</table>"
        f"<table>{''.join(hashes)}<tr><td>signature</td><td>{sig_txt}</td></tr>"
        f"<tr><td>tool</td><td>{_e(tool.get('name', 'audiotools'))} {_e(tool.get('version'))}"
        f"{(' (Python ' + _e(tool.get('python')) + ')') if tool.get('python') else ''}</td></tr></table>"
        f"<h3>Models</h3><table><tr><th>role</th><th>name</th><th>sha256</th></tr>{models}</table>"
        "<details><summary>Parameters (the resolved pipeline, as recorded)</summary>"
        f"<pre class='mono'>{_e(params)}</pre>"
        "</details></section>"
    )


def _recording(m: dict) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in m["recording"])
    return f"<section id='recording'><h2>2. Recording</h2><table>{rows}</table></section>"


def _timeline(m: dict, col: dict[str, str]) -> str:
    dur = max(float(m.get("duration") or 0.0), 1e-3)
    lanes = m.get("lanes") or []
    wave = m.get("waveform")
    y = 6.0
    parts = []
    scale = TL_W / dur
    if wave:
        n = len(wave)
        step = TL_W / n
        top = " ".join(
            f"{TL_X0 + i * step:.1f},{WAVE_H / 2 + y - hi * WAVE_H / 2:.1f}" for i, (_, hi) in enumerate(wave)
        )
        bot = " ".join(
            f"{TL_X0 + i * step:.1f},{WAVE_H / 2 + y - lo * WAVE_H / 2:.1f}"
            for i, (lo, _) in reversed(list(enumerate(wave)))
        )
        parts.append(f"<text x='4' y='{y + WAVE_H / 2 + 4:.0f}'>waveform</text>")
        parts.append(f"<polygon points='{top} {bot}' fill='#7a8699' stroke='none'/>")
        y += WAVE_H + 6
    for name, regions in lanes:
        c = col.get(name, "#888")
        parts.append(f"<g class='lane' data-speaker='{_e(name)}'><text x='4' y='{y + 14:.0f}'>{_e(name[:18])}</text>")
        parts.append(f"<rect x='{TL_X0}' y='{y:.0f}' width='{TL_W}' height='{LANE_H - 4}' fill='#f3f3f3'/>")
        parts.append(
            "".join(
                f"<rect x='{TL_X0 + a * scale:.1f}' y='{y:.0f}' width='{max((b - a) * scale, 0.6):.1f}' "
                f"height='{LANE_H - 4}' fill='{c}'/>"
                for a, b in regions
            )
        )
        parts.append("</g>")
        y += LANE_H
    ov = m.get("overlaps") or []
    if lanes:
        parts.append(f"<text x='4' y='{y + 11:.0f}'>overlap</text>")
        parts.append(
            "".join(
                f"<rect class='ov' x='{TL_X0 + a * scale:.1f}' y='{y:.0f}' width='{max((b - a) * scale, 0.8):.1f}' "
                f"height='12' fill='#e0245e'/>"
                for a, b in ov
            )
        )
        y += 16
    # time axis
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200) if dur / s <= 12)
    ticks = []
    t = 0.0
    while t <= dur + 1e-9:
        x = TL_X0 + t * scale
        ticks.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='4' y2='{y:.0f}' stroke='#000' stroke-opacity='0.08'/>"
            f"<text x='{x:.1f}' y='{y + 12:.0f}' text-anchor='middle'>{_t(t) if step < 60 else _t(t)[:-2]}</text>"
        )
        t += step
    y += 18
    head = f"<line id='playhead' x1='{TL_X0}' x2='{TL_X0}' y1='2' y2='{y - 16:.0f}' stroke='#000' stroke-width='1.5'/>"
    svg = (
        f"<svg id='timeline' class='timeline' viewBox='0 0 {TL_X0 + TL_W + 10:.0f} {y:.0f}' "
        f"data-duration='{dur:.3f}' data-x0='{TL_X0}' data-w='{TL_W}' role='img' "
        f"aria-label='waveform and speaker lanes; click to play from there'>"
        + "".join(ticks)
        + "".join(parts)
        + head
        + "</svg>"
    )
    legend = "".join(f"<span><i class='sw' style='background:{c}'></i>{_e(n)}</span>" for n, c in col.items())
    ov_txt = (
        f"{len(ov)} stretch(es) of overlapped speech, {sum(b - a for a, b in ov):.1f} s (red row)"
        if ov
        else "no overlapped speech in the speaker turns"
    )
    return (
        "<section id='timeline-section'><h2>3. Timeline</h2>"
        f"<p class='note'>One lane per speaker; {ov_txt}. Click anywhere on the timeline to play from there.</p>"
        f"{svg}<div class='legend'>{legend}</div></section>"
    )


def _transcript(m: dict, col: dict[str, str]) -> str:
    segs = m.get("segments")
    if segs is None:
        return (
            "<section id='transcript'><h2>4. Transcript</h2><p class='note'>This report compares voices; "
            "it has no transcript. Make one with <code>audiotools transcribe --report</code>.</p></section>"
        )
    out = []
    n_low = n_masked = 0
    differ = []  # segments whose text is not their words joined (an edited transcript)
    for s in segs:
        spk = str(s.get("speaker") or "")
        c = col.get(spk, "#888")
        words = s.get("words") or []
        said = " ".join(str(s.get("text", "")).split())
        if words and said != " ".join("".join(str(w.get("word", "")) for w in words).split()):
            # the text is what the exports and anyone quoting the JSON use: show it, and the words too
            differ.append(s)
            joined = _e("".join(str(w.get("word", "")) for w in words).strip())
            body = (
                f"<span class='w' data-s='{float(s['start']):.3f}'>{_e(said)}</span>"
                f"<span class='differs'>this segment's text differs from its words, which say: “{joined}”</span>"
            )
        elif words:
            ws = []
            for w in words:
                cls = "w"
                title = ""
                if w.get("masked"):
                    cls += " m"
                    n_masked += 1
                    title = " title='masked word'"
                elif float(w.get("probability", 1.0)) < LOW_CONFIDENCE:
                    cls += " lc"
                    n_low += 1
                    title = f" title='low confidence: p={float(w.get('probability', 0)):.2f}'"
                text = str(w.get("word", ""))
                lead = " " if text[:1].isspace() else ""
                ws.append(
                    f"{lead}<span class='{cls}' data-s='{float(w['start']):.3f}'{title}>{_e(text.strip())}</span>"
                )
            body = "".join(ws)
        else:
            body = f"<span class='w' data-s='{float(s['start']):.3f}'>{_e(str(s.get('text', '')).strip())}</span>"
        out.append(
            f"<div class='seg' style='--c:{c}' data-speaker='{_e(spk)}'>"
            f"<span class='ts' data-s='{float(s['start']):.3f}'>{_t(s['start'])}–{_t(s['end'])}</span>"
            f"<span class='spk'>{_e(spk or 'unattributed')}</span><p>{body}</p></div>"
        )
    mk = m.get("masking")
    notes = []
    if differ:
        notes.append(
            f"<b class='bad'>{len(differ)} segment(s) have a text that differs from their words</b> "
            f"(first at {_t(differ[0]['start'])}): audiotools writes a segment's text from its words, so the "
            "transcript was edited after it was made. Each such segment shows its text, then what its words say."
        )
    if mk is not None:
        k = mk.get("masked_words", n_masked)
        notes.append(
            f"Profanity masking was applied ({_e(mk.get('style', ''))} style): {k} word(s) masked; masked words stay "
            "masked in this report (grey)."
            if k
            else f"Profanity masking was applied ({_e(mk.get('style', ''))} style); no word needed masking."
        )
    else:
        notes.append("No profanity masking was applied to this transcript.")
    notes.append(
        f"{n_low} word(s) below probability {LOW_CONFIDENCE:g} are marked <span class='lc-sample'>like this</span>. "
        "Click a word or a time to play from there."
    )
    return (
        "<section id='transcript'><h2>4. Transcript</h2>"
        + "".join(f"<p class='note'>{n}</p>" for n in notes)
        + "".join(out)
        + "</section>"
    )


def _quality_txt(q: dict | None) -> str:
    if not q:
        return "-"
    snr = q.get("snr_db")
    base = f"{'passed' if q.get('passed') else 'insufficient'} (SNR {'-' if snr is None else f'{snr:.0f} dB'})"
    if q.get("reasons"):
        base += ": " + "; ".join(q["reasons"])
    return base


def _speakers(m: dict, col: dict[str, str]) -> str:
    def _bound_txt(which: str) -> str:  # a short mark; the full sentence is in a note below the table
        more = "smaller" if which == "lower" else "larger"
        return f"at the calibration's {which} bound: the true LR may be {more} still"

    verification = m["kind"] == "verification"
    rows = []
    bound_rows = []
    for s in m.get("speakers") or []:
        c = col.get(s["lane"], "#888")
        bound = s.get("at_bound")
        if bound:
            bound_rows.append(s)
        support = _e(s.get("support") or "-") + (
            f"<br><span class='note bound'>{_e(_bound_txt(bound))}</span>" if bound else ""
        )
        cells = [f"<td><i class='sw' style='background:{c}'></i>{_e(s['label'])}</td>"]
        if verification:  # verify decides nothing: the likelihood ratio, and which speaker has the highest
            cells += [
                f"<td>{_e(s.get('candidate') or '-')}</td>",
                f"<td class='num'>{_num(s.get('score'), '.3f')}</td>",
                f"<td class='num'>{_num(s.get('llr'), '+.2f')}</td>",
                f"<td>{support}</td>",
                f"<td>{'best match (highest LR)' if s.get('best') else ''}</td>",
            ]
        else:
            cells += [
                f"<td><b>{_e(s['identity'])}</b></td><td>{_e(s.get('candidate') or '-')}</td>",
                f"<td class='num'>{_num(s.get('score'), '.3f')}</td>",
                f"<td class='num'>{_num(s.get('llr'), '+.2f')}</td>",
                f"<td>{support}</td>",
                f"<td class='num posterior'>{_num(s.get('posterior'), '.3f')}</td>",
                f"<td>{_e(s.get('decision') or '-')}</td>",
            ]
        cells += [
            f"<td class='num'>{_num(s.get('net_speech'), '.1f')} s</td>",
            f"<td>{_e(_quality_txt(s.get('quality')))}</td>",
        ]
        rows.append(f"<tr class='speaker' data-speaker='{_e(s['lane'])}'>{''.join(cells)}</tr>")
    ident = m.get("identification")
    note = ""
    if verification:
        best = m.get("best")
        note = (
            "<p class='note'>Verification gives a likelihood ratio per speaker and decides nothing: no prior was "
            "given and no identity is named (that decision needs the prior odds and the other evidence, and is for "
            "the court or the reader). "
            + (
                f"The best match is <b>{_e(best)}</b>, the speaker with the highest likelihood ratio "
                "(<code>best</code> in <code>verify --json</code>); that is a ranking, not an identification.</p>"
                if best
                else "No speaker got a likelihood ratio, so none is the best match.</p>"
            )
        )
    elif ident and ident.get("people"):
        note = (
            f"<p class='note'>Compared with {len(ident['people'])} enrolled voiceprint(s) in {_e(ident.get('store'))}; "
            f"prior {ident.get('prior')} that a speaker is one of them. The posterior is the probability that the "
            "speaker is the best candidate, from that prior and the likelihood ratios against every enrolled person "
            "(docs/voiceprints.md). "
            f"Decision rule: {_e(ident.get('decision_rule'))}.</p>"
        )
    elif m["kind"] == "transcript":
        note = "<p class='note'>No voiceprints were compared: every speaker is unknown.</p>"
    for s in bound_rows:
        lo, hi = (s.get("bounds") or [None, None])[:2]
        edge = lo if s["at_bound"] == "lower" else hi
        note += (
            f"<p class='note bound'>{_e(s['label'])}: log10 LR {_num(s.get('llr'), '+.3f')} is at the calibration's "
            f"{_e(s['at_bound'])} bound ({_num(edge, '+.3f')}): the value is clipped there because the calibration "
            "data cannot support a more extreme one; the true likelihood ratio may be more extreme, and the "
            "calibration cannot say more.</p>"
        )
    if verification:
        head = (
            "<tr><th>speaker</th><th>compared with</th><th>score (cosine)</th><th>log10 LR</th>"
            "<th>verbal scale</th><th>best match</th><th>net speech</th><th>quality</th></tr>"
        )
    else:
        head = (
            "<tr><th>speaker</th><th>identity</th><th>best candidate</th><th>score (cosine)</th>"
            "<th>log10 LR</th><th>verbal scale</th><th>posterior</th><th>decision</th><th>net speech</th>"
            "<th>quality</th></tr>"
        )
    return "<section id='speakers'><h2>5. Speakers</h2><table>" + head + "".join(rows) + f"</table>{note}</section>"


def _comparisons(m: dict) -> str:
    comps = m.get("comparisons") or []
    ref = m.get("reference")
    head = "<section id='comparison'><h2>6. Comparison</h2>"
    if ref:
        files = ref.get("files") or []
        samples = ref.get("samples") if isinstance(ref.get("samples"), list) else []
        if files:
            src = ", ".join(f"{_e(Path(f.get('file', '')).name)} (<code>{_e(f.get('sha256'))}</code>)" for f in files)
        else:
            src = f"enrolled voiceprint {_e(ref.get('voiceprint') or ref.get('label'))}"
            if ref.get("record_sha256"):
                emb = ref.get("embeddings") or {}
                src += (
                    f" (record sha256 <code>{_e(ref['record_sha256'])}</code>; embeddings {_e(emb.get('file'))}, "
                    f"sha256 <code>{_e(emb.get('sha256'))}</code>)"
                )
            if samples:
                src += ", enrolled from " + ", ".join(
                    f"{_e(x.get('file'))} (<code>{_e(x.get('sha256'))}</code>)" for x in samples
                )
        if ref.get("single_speaker") is False:
            src += " <b>(a known sample holds more than one voice: see its quality)</b>"
        q = ref.get("quality") or {}
        head += (
            f"<p>Known voice: <b>{_e(ref.get('label'))}</b>: {src}; {_num(ref.get('speech_seconds'), '.1f')} s of net "
            f"speech, condition {_e(ref.get('condition'))}, quality {_e(_quality_txt(q))}.</p>"
        )
    for n in m.get("notes") or []:
        head += f"<p class='note'>{_e(n)}</p>"
    if not comps:
        return head + "<p class='note'>No speaker was compared with a known voice (no identity).</p></section>"
    out = [head]
    for c in comps:
        cal = c["calibration"]
        fig = cal.get("figures") or {}
        figs = ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in fig.items() if isinstance(v, (int, float)))
        trials = cal.get("trials") or {}
        # the LR as the verbal statement and the bound note write it (lr_text), one figure per LR;
        # at the calibration's clip bound the true value may be more extreme: say so beside the number
        lr_txt = "-" if c.get("llr") is None else lr_text(c["llr"], c.get("at_bound"))
        marks = {"lower": "≤ ", "upper": "≥ "}
        edge = marks.get(c.get("at_bound") or "", "")
        plots = ""
        if c.get("tippett"):
            plots = f"<div class='plots'><div>{c['tippett']}</div><div>{c['ece']}</div></div>"
        turns = ""
        if c.get("turns"):
            n_edge = sum(1 for t in c["turns"] if t.get("at_bound"))
            turns = (
                "<details><summary>Evidence by turn (each turn with ≥ 1 s of speech scored on its own)</summary><table>"
                "<tr><th>start</th><th>end</th><th>speech</th><th>cosine</th><th>log10 LR</th></tr>"
                + "".join(
                    f"<tr><td class='num' data-s='{t['start']:.3f}'>{_t(t['start'])}</td>"
                    f"<td class='num'>{_t(t['end'])}</td>"
                    f"<td class='num'>{t['speech_seconds']:.1f} s</td><td class='num'>{t['score']:.3f}</td>"
                    f"<td class='num'>{marks.get(t.get('at_bound') or '', '')}"
                    f"{t['llr']:+.2f}{' (at bound)' if t.get('at_bound') else ''}</td></tr>"
                    for t in c["turns"]
                )
                + "</table>"
                + (
                    f"<p class='note bound'>{n_edge} turn(s) are at the calibration's bound "
                    f"(log10 LR limited to {_e(cal.get('bounds'))}): their true likelihood ratios may be more "
                    "extreme; the calibration cannot say more.</p>"
                    if n_edge
                    else ""
                )
                + "</details>"
            )
        out.append(
            f"<div class='comp' id='{_e(c['key'])}'><h3>{_e(c['title'])}</h3>"
            f"<p><b>H1</b>: {_e(c['H1'])}.<br><b>H2</b>: {_e(c['H2'])}.</p>"
            f"<table><tr><th>log10 LR</th><td class='num'>{edge}{_num(c.get('llr'), '+.2f')}</td><th>LR</th>"
            f"<td class='num'>{_e(lr_txt)}</td><th>verbal scale (ENFSI 2015)</th><td>{_e(c['support'])}"
            + (f" (at the calibration's {_e(c['at_bound'])} bound)" if c.get("at_bound") else "")
            + "</td></tr></table>"
            f"<p class='verbal'>{_e(c['verbal'])}</p>"
            f"<p><b>Compared in</b>: {_e(c['condition_description'])}. <b>Reference population and calibration</b>: "
            f"{_e(cal.get('source'))}; data: {_e(cal.get('population'))}"
            f"{('; channel: ' + _e(cal['channel'])) if cal.get('channel') else ''}; "
            f"{trials.get('target', '?')} same-speaker / {trials.get('nontarget', '?')} different-speaker trials; "
            f"{_e(cal.get('figures_kind'))}: {_e(figs or '-')}; log10 LR limited to {_e(cal.get('bounds'))}.</p>"
            f"{plots}"
            + (f"<p class='note'>{_e(c['plot_note'])}</p>" if c.get("plot_note") else "")
            + turns
            + "<h3>Limitations of this comparison</h3><ul class='lim'>"
            + "".join(f"<li>{_e(x)}</li>" for x in c["limitations"])
            + "<li>A likelihood ratio, not proof of identity.</li></ul></div>"
        )
    out.append("</section>")
    return "".join(out)


def _limitations(m: dict) -> str:
    if m.get("kind") == "transcript":
        evidence = (
            "it is not itself covered by the provenance hashes: the JSON transcript and the recording are the "
            "evidence, and the checks above can be repeated with <code>audiotools provenance verify</code>."
        )
    else:  # verify / identify: no transcript was hashed; the command's --json output and the files are the record
        command = "verify" if m.get("kind") == "verification" else "identify"
        evidence = (
            "it is not covered by any hash: the recording (identified by its sha256 above), the known samples or "
            f"voiceprints and the output of <code>audiotools {command} --json</code> are the record, and the "
            "comparison can be repeated from them."
        )
    return (
        "<section id='limitations'><h2>7. Limitations</h2><ul class='lim'>"
        + "".join(f"<li>{_e(x)}</li>" for x in m.get("limitations") or [])
        + f"</ul><p class='note'>This page was generated by audiotools; {evidence} "
        "Method: docs/voiceprints.md, docs/provenance.md, docs/report.md.</p></section>"
    )


def render(model: dict) -> str:
    col = colours(model)
    a = model.get("audio") or {}
    if a.get("src"):
        if a.get("embedded") or str(a["src"]).startswith("data:"):
            missing = "The recording embedded in this page could not be played by this browser."
        else:
            # the path the page tries, relative to it as build.py computed it; the script adds where that resolves
            missing = (
                f"The recording was not found at <code class='tried'>{_e(unquote(str(a['src'])))}</code>"
                "<span class='tried-abs'></span> (keep the report beside it, or make the report with "
                "<code>--embed-audio</code>)"
            )
        player = (
            f"<div class='player'><audio id='audio' controls preload='metadata' src='{_e(a['src'])}'></audio>"
            f"<div class='note' title='{_e(a.get('note'))}'>{_e(a.get('note'))}</div>"
            f"<div class='audio-error' id='audio-error' role='alert' hidden>{missing}</div></div>"
        )
    else:
        player = f"<div class='player'><div class='note'>{_e(a.get('note'))}</div></div>"
    title = f"Evidence report: {model['title']}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src data:; media-src 'self' data: file:\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        + _header(model)
        + player
        + _integrity(model)
        + _recording(model)
        + _timeline(model, col)
        + _transcript(model, col)
        + _speakers(model, col)
        + _comparisons(model)
        + _limitations(model)
        + f"<script>{SCRIPT}</script></body></html>\n"
    )


def write(model: dict, path: str | os.PathLike) -> Path:
    """Render ``model`` and write it atomically to ``path``."""
    from audiotools.fileio import atomic_write_text

    p = Path(path)
    atomic_write_text(p, render(model))
    return p
