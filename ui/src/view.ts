// Rendering: the state becomes HTML; every control carries data-action (or data-nav,
// data-form) for the controller and an accessible name.
import type { Contact, Devices, HistoryRoom, MemberInfo, Role, Settings } from "./api";
import { duration, keyLabel, linkQuality, meterPercent, participants, pathLabel, safetyCodeGroups, safetyGroups, when, whoWasThere } from "./format";
import { qrSvg } from "./qr";
import { audience, canModerate, contact, me, stage, type Loaded, type UiState } from "./state";

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

/** A rough passphrase strength hint: length and variety, not a promise. */
export function strength(p: string): "weak" | "fair" | "strong" {
  const kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((r) => r.test(p)).length;
  if (p.length >= 16 || (p.length >= 12 && kinds >= 3)) return "strong";
  if (p.length >= 8) return "fair";
  return "weak";
}

function initials(name: string): string {
  return name.split(/\s+/).map((w) => w[0] ?? "").join("").slice(0, 2).toUpperCase();
}

/** A stable hue per key, so a person keeps their avatar colour everywhere. */
function hue(key: string): number {
  let h = 0;
  for (const c of key) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

function avatar(key: string, name: string, cls = "avatar"): string {
  return `<div class="${cls}" aria-hidden="true" style="--hue:${hue(key)}">${esc(initials(name))}</div>`;
}

// Icons: 24×24 strokes, decorative (the control around each has a text or label).
const ICONS: Record<string, string> = {
  home: `<path d="M3 11.5 12 4l9 7.5"/><path d="M5 10v10h14V10"/><path d="M10 20v-5h4v5"/>`,
  history: `<circle cx="12" cy="12" r="8.5"/><path d="M12 7.5V12l3 2"/>`,
  settings: `<circle cx="12" cy="12" r="3"/><path d="M12 2.5v3M12 18.5v3M4.2 6.2l2.1 2.1M17.7 15.7l2.1 2.1M2.5 12h3M18.5 12h3M4.2 17.8l2.1-2.1M17.7 8.3l2.1-2.1"/>`,
  room: `<path d="M12 3a3 3 0 0 1 3 3v5a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z"/><path d="M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21"/>`,
  micOff: `<path d="M9 9v2a3 3 0 0 0 5.1 2.1M15 10V6a3 3 0 0 0-5.7-1.3"/><path d="M5.5 11a6.5 6.5 0 0 0 10.8 4.9M18.5 11a6.4 6.4 0 0 1-.5 2.4M12 17.5V21M3 3l18 18"/>`,
  hand: `<path d="M8 12V5.5a1.5 1.5 0 0 1 3 0V11M11 10V4.5a1.5 1.5 0 0 1 3 0V11M14 10.5V6a1.5 1.5 0 0 1 3 0v7.5a7 7 0 0 1-7 7h-.5a6 6 0 0 1-5-2.7L2.8 14a1.5 1.5 0 0 1 2.4-1.8L8 15"/>`,
  leave: `<path d="M14 4h4a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-4"/><path d="M10 16l-4-4 4-4M6 12h10"/>`,
  qr: `<rect x="3.5" y="3.5" width="6" height="6"/><rect x="14.5" y="3.5" width="6" height="6"/><rect x="3.5" y="14.5" width="6" height="6"/><path d="M14.5 14.5h2v2h-2zM18.5 18.5h2v2h-2zM18.5 14.5h2M14.5 18.5v2"/>`,
  copy: `<rect x="8.5" y="8.5" width="12" height="12" rx="2"/><path d="M15.5 8.5V5.5a2 2 0 0 0-2-2h-8a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h3"/>`,
  more: `<circle cx="5.5" cy="12" r="1.3"/><circle cx="12" cy="12" r="1.3"/><circle cx="18.5" cy="12" r="1.3"/>`,
  shield: `<path d="M12 3l8 3v6c0 4.5-3.4 8-8 9-4.6-1-8-4.5-8-9V6z"/><path d="M8.5 12l2.5 2.5 4.5-5"/>`,
  warn: `<path d="M12 3.5 2.5 20h19z"/><path d="M12 10v4.5M12 17.2v.3"/>`,
  close: `<path d="M6 6l12 12M18 6 6 18"/>`,
  back: `<path d="M15 5l-7 7 7 7"/>`,
};

export function icon(name: keyof typeof ICONS): string {
  return `<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">${ICONS[name]}</svg>`;
}

const ROLE_LABEL: Record<Role, string> = { host: "Host", moderator: "Moderator", speaker: "Speaker", listener: "Listener" };

function verifiedMark(c: Contact | undefined): string {
  if (!c) return "";
  if (c.key_changed) return `<span class="mark warn" role="img" aria-label="key changed" title="Their key changed since you last met: compare safety numbers again">${icon("warn")}</span>`;
  if (c.verified) return `<span class="mark verified" role="img" aria-label="verified" title="Safety number verified">${icon("shield")}</span>`;
  return "";
}

function linkBars(s: UiState, m: MemberInfo): string {
  if (m.me) return "";
  const link = s.links[m.key];
  const q = linkQuality(link);
  const path = pathLabel(link, (k) => s.room?.members.find((x) => x.key === k)?.name);
  const label = path ? `${q.label}, ${path}` : q.label;
  return `<span class="link q-${q.level}" role="img" aria-label="${esc(label)}" title="${esc(label)}" data-quality="${q.level}" data-path="${esc(link?.path ?? "")}">${[1, 2, 3].map((i) => `<i class="${i <= q.bars ? "on" : ""}"></i>`).join("")}</span>`;
}

function personMenu(s: UiState, m: MemberInfo): string {
  const mine = me(s);
  const vol = Math.round((s.volumes[m.key] ?? 1) * 100);
  const mod = canModerate(s) && m.role !== "host";
  const item = (op: string, text: string, danger = false) =>
    `<button role="menuitem" class="${danger ? "danger" : ""}" data-action="moderate" data-target="${esc(m.key)}" data-op="${op}">${text}</button>`;
  const modItems = mod
    ? [
        `<div role="separator"></div>`,
        m.role === "listener" ? item("invite_to_stage", "Invite to stage") : item("move_to_audience", "Move to audience"),
        mine?.role === "host" && m.role !== "moderator" ? item("make_moderator", "Make moderator") : "",
        m.role !== "listener" && !m.muted ? item("mute", "Mute") : "",
        item("remove", "Remove from room", true),
      ].join("")
    : "";
  return `<div class="popover" id="menu-${esc(m.key)}" role="dialog" aria-label="Options for ${esc(m.name)}" data-menu="${esc(m.key)}">
    <label class="volume">
      <span class="row-between"><span>Volume</span><output>${vol}%</output></span>
      <input type="range" min="0" max="200" step="5" value="${vol}" data-volume="${esc(m.key)}" aria-label="Volume for ${esc(m.name)}" aria-valuetext="${vol}%">
    </label>
    <div role="menu" aria-label="Actions for ${esc(m.name)}">
      <button role="menuitem" data-action="safety" data-target="${esc(m.key)}">Compare safety numbers</button>
      ${modItems}
    </div>
  </div>`;
}

function person(s: UiState, m: MemberInfo): string {
  const speaking = s.speaking[m.key] ? " speaking" : "";
  const badges = [
    m.role === "host" ? `<span class="badge role">Host</span>` : "",
    m.role === "moderator" ? `<span class="badge role">Mod</span>` : "",
    m.muted && m.role !== "listener" ? `<span class="badge muted" aria-label="muted" title="Muted">${icon("micOff")}</span>` : "",
    m.hand_raised ? `<span class="badge hand" aria-label="hand raised" title="Hand raised">${icon("hand")}</span>` : "",
  ].join("");
  const open = s.menu === m.key;
  // A listener's promotion stays one click away for moderators; everything else is in the menu.
  const quick =
    canModerate(s) && !m.me && m.role === "listener"
      ? `<button class="quick" data-action="moderate" data-target="${esc(m.key)}" data-op="invite_to_stage">Invite to speak</button>`
      : "";
  const more = m.me
    ? ""
    : `<button class="more icon-btn" data-action="menu" data-target="${esc(m.key)}" aria-haspopup="dialog" aria-expanded="${open}"${open ? ` aria-controls="menu-${esc(m.key)}"` : ""} aria-label="Options for ${esc(m.name)}" title="Options">${icon("more")}</button>`;
  return `<li class="person${speaking}${open ? " open" : ""}" data-key="${esc(m.key)}" aria-label="${esc(m.name)}${m.me ? " (you)" : ""}">
    ${more}
    <div class="avatar-wrap">${avatar(m.key, m.name)}${badges ? `<div class="badges">${badges}</div>` : ""}</div>
    <div class="who"><span class="name">${esc(m.name)}${m.me ? " (you)" : ""}</span>${verifiedMark(contact(s, m.key))}</div>
    <div class="meta">${linkBars(s, m)}</div>
    ${quick}
    ${open ? personMenu(s, m) : ""}
  </li>`;
}

/** Whether people outside our network can reach us with the invite, in plain words. */
function reachability(s: UiState): string {
  if (s.portMapping) {
    return `<p class="muted" data-testid="reachability">Your router forwards ${esc(s.portMapping)} to Salon, so people outside your network can join.</p>`;
  }
  return `<p class="muted" data-testid="reachability">Your router did not open a port for Salon (no UPnP, NAT-PMP or PCP), so only people on your network, or with a public address, may be able to join. To host for others, forward a UDP port on your router to this computer and start Salon with SALON_BIND=0.0.0.0:PORT.</p>`;
}

function dialog(s: UiState): string {
  const d = s.dialog;
  if (!d) return "";
  let body = "";
  if (d.kind === "invite") {
    if (!s.invite) return "";
    body = `<h2 id="dialog-title">Invite people</h2>
      <p class="lede">Anyone with this invite can join. Scan it with another device or send the text over a channel you trust.</p>
      ${reachability(s)}
      <div class="qr-box" data-testid="invite-qr">${qrSvg(s.invite)}</div>
      <code class="invite-full">${esc(s.invite)}</code>
      <div class="dialog-actions">
        <button data-action="copy-invite" class="primary">${icon("copy")} Copy invite</button>
        <button data-action="revoke-invite" title="The old invite stops working; people in the room stay">Revoke invite</button>
        <button data-action="close-dialog">Close</button>
      </div>
      <p class="muted">Revoking makes a new invite: whoever holds the old one can no longer join. Removing someone does the same.</p>`;
  } else if (d.kind === "stage_invite") {
    // Decline comes first in focus order (see app.ts): a stray Enter must not open the microphone.
    body = `<h2 id="dialog-title">Invitation to speak</h2>
      <p class="lede" data-testid="stage-invite">${esc(d.name)} invites you to speak. Your microphone will turn on.</p>
      <div class="dialog-actions">
        <button class="primary" data-action="stage-answer" data-accept="true">Accept</button>
        <button data-action="stage-answer" data-accept="false" data-autofocus>Decline</button>
      </div>`;
  } else {
    const n = d.number;
    const groups = safetyGroups(n.safety_number);
    body = `<h2 id="dialog-title">Compare safety numbers with ${esc(n.name)}</h2>
      <p class="lede">Read these numbers out to ${esc(n.name)} in person or on a call you trust. If they see the same digits, nobody sits between you.</p>
      <ol class="safety-number" aria-label="Safety number" data-safety-number="${esc(n.safety_number)}">${groups.map((g) => `<li>${esc(g)}</li>`).join("")}</ol>
      <p class="verify-state ${n.verified ? "ok" : ""}" role="status">${n.verified ? `${icon("shield")} Verified` : "Not verified yet"}</p>
      ${d.error ? `<p class="error" role="alert">${esc(d.error)}</p>` : ""}
      <div class="dialog-actions">
        ${n.verified ? `<button data-action="verify" data-target="${esc(n.key)}" data-on="false">Unmark</button>` : `<button class="primary" data-action="verify" data-target="${esc(n.key)}" data-on="true">Mark as verified</button>`}
        <button data-action="close-dialog">Close</button>
      </div>`;
  }
  return `<div class="overlay" data-overlay>
    <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="dialog-title" data-dialog="${d.kind}">
      <button class="icon-btn close" data-action="close-dialog" aria-label="Close">${icon("close")}</button>
      ${body}
    </div>
  </div>`;
}

function nav(s: UiState): string {
  const item = (screen: string, label: string, ic: keyof typeof ICONS, extra = "") => {
    const current = s.screen === screen;
    return `<li><button class="nav-item${current ? " current" : ""}" data-nav="${screen}"${current ? ` aria-current="page"` : ""}${extra}>${icon(ic)}<span class="nav-label">${label}</span></button></li>`;
  };
  const room = s.room
    ? item("room", `<span class="live-dot" aria-hidden="true"></span>${esc(s.room.title)}`, "room", ` aria-label="Room: ${esc(s.room.title)}"`)
    : "";
  return `<nav class="sidebar" aria-label="Main">
    <div class="brand"><span class="logo" aria-hidden="true"></span><span class="nav-label">Salon</span></div>
    <ul>
      ${item("home", "Home", "home")}
      ${room}
      ${item("history", "History", "history")}
      ${item("settings", "Settings", "settings")}
    </ul>
    <div class="me-card">${s.profile ? `${avatar(s.profile.fingerprint, s.profile.name, "avatar sm")}<span class="nav-label"><strong>${esc(s.profile.name)}</strong></span>` : ""}</div>
  </nav>`;
}

function loaded<T>(l: Loaded<T>, what: string, f: (v: T) => string): string {
  if (l.status === "loading") return `<p class="muted">Loading ${what}…</p>`;
  if (l.status === "failed") return `<p class="muted">Could not load ${what}: ${esc(l.message)}</p>`;
  return f(l.value);
}

function roomSummary(r: HistoryRoom): string {
  const names = whoWasThere(r.participants);
  return `${esc(when(r.started_at))} · ${esc(duration(r))} · ${names.length} ${names.length === 1 ? "person" : "people"}`;
}

function home(s: UiState, err: string): string {
  const recent = loaded(s.recent, "recent rooms", (rooms) =>
    rooms.length
      ? `<ul class="rows">${rooms
          .slice(0, 5)
          .map((r) => `<li><button class="row" data-action="open-history" data-room="${r.id}" data-recent-room="${r.id}"><span class="row-title">${esc(r.title)}</span><span class="row-meta">${roomSummary(r)}</span></button></li>`)
          .join("")}</ul>`
      : `<p class="muted">Rooms you join or host appear here.</p>`,
  );
  const contacts = loaded(s.contacts, "contacts", (cs) =>
    cs.length
      ? `<ul class="rows contacts">${cs
          .map(
            (c) => `<li class="contact" data-contact="${esc(c.key)}">${avatar(c.key, c.name, "avatar sm")}
              <span class="contact-name">${esc(c.name)} ${verifiedMark(c)}</span>
              <span class="row-meta">${c.last_seen != null ? `Last seen ${esc(when(c.last_seen))}` : ""}</span>
              <button data-action="safety" data-target="${esc(c.key)}" aria-label="Compare safety numbers with ${esc(c.name)}">Compare</button></li>`,
          )
          .join("")}</ul>`
      : `<p class="muted">People you meet in rooms appear here. Compare safety numbers to mark them verified.</p>`,
  );
  const inRoom = s.room
    ? `<div class="banner" role="status"><span class="live-dot" aria-hidden="true"></span> You are in <strong>${esc(s.room.title)}</strong><button data-nav="room" class="primary">Return to room</button></div>`
    : "";
  return `<section class="page home" data-screen="home">
    <header class="page-head"><h1 tabindex="-1">Home</h1>${s.profile ? `<p class="lede">Signed in as <strong>${esc(s.profile.name)}</strong> · fingerprint <code>${esc(s.profile.fingerprint)}</code></p>` : ""}</header>
    ${err}
    ${inRoom}
    <div class="cards">
      <form class="card" data-form="host"><h2>Start a room</h2>
        <label>Title <input name="title" required maxlength="128" placeholder="Friday night jazz"></label>
        <button type="submit" class="primary">Start</button></form>
      <form class="card" data-form="join"><h2>Join a room</h2>
        <label>Invite <textarea name="invite" required rows="3" placeholder="salon:…"></textarea></label>
        <button type="submit" class="primary">Join</button></form>
    </div>
    <div class="cards">
      <section class="card" aria-labelledby="recent-h"><h2 id="recent-h">Recent rooms</h2>${recent}</section>
      <section class="card" aria-labelledby="contacts-h"><h2 id="contacts-h">Contacts</h2>${contacts}</section>
    </div>
  </section>`;
}

function room(s: UiState, err: string): string {
  const r = s.room;
  if (!r) return `<section class="page" data-screen="room"><p class="muted">Joining…</p></section>`;
  const mine = me(s);
  const hands = audience(s).filter((m) => m.hand_raised);
  const ptt = s.settings?.push_to_talk_key;
  const onStage = mine && mine.role !== "listener";
  return `<section class="page room" data-screen="room">
    <header class="room-head">
      <div class="room-title"><h1>${esc(r.title)}</h1><p class="safety">Safety code <strong data-testid="safety-code" title="Read all 20 words aloud with the others: if everyone sees the same words, nobody sits in the middle">${safetyCodeGroups(r.safety_code).map((g) => `<span class="code-group">${esc(g)}</span>`).join(" / ")}</strong></p></div>
      ${
        s.invite
          ? `<div class="invite-box"><code class="invite" data-testid="invite">${esc(s.invite)}</code>
          <button data-action="copy-invite" aria-label="Copy the invite" title="Copy the invite">${icon("copy")} Copy</button>
          <button data-action="show-invite" aria-haspopup="dialog">${icon("qr")} Invite</button></div>`
          : ""
      }
    </header>
    ${err}
    <div class="room-body">
      <div class="people">
        <h2>Stage</h2><ul class="stage" data-testid="stage">${stage(s).map((m) => person(s, m)).join("")}</ul>
        ${canModerate(s) && hands.length ? `<h2>Raised hands</h2><ul class="hands">${hands.map((m) => `<li>${avatar(m.key, m.name, "avatar sm")}<span>${esc(m.name)}</span> <button data-action="moderate" data-target="${esc(m.key)}" data-op="invite_to_stage">Invite to speak</button></li>`).join("")}</ul>` : ""}
        <h2>Audience</h2><ul class="audience" data-testid="audience">${audience(s).map((m) => person(s, m)).join("")}</ul>
        ${audience(s).length ? "" : `<p class="muted empty">Nobody in the audience yet.${s.invite ? " Share the invite to bring people in." : ""}</p>`}
      </div>
      <aside class="chat" aria-label="Chat">
        <h2>Chat</h2>
        <ol class="lines" data-testid="chat">${s.chat.map((c) => `<li${c.from === mine?.key ? ` class="mine"` : ""}><strong>${esc(c.name)}</strong> ${esc(c.text)}</li>`).join("")}</ol>
        <form data-form="chat"><label class="sr-only" for="chat-text">Message</label><input id="chat-text" name="text" maxlength="2000" autocomplete="off" placeholder="Say something"><button type="submit">Send</button></form>
      </aside>
    </div>
    <footer class="controls" role="toolbar" aria-label="My controls">
      ${onStage ? `<button data-action="mute" class="${mine.muted ? "" : "live"}" aria-pressed="${mine.muted}" aria-keyshortcuts="M">${icon(mine.muted ? "micOff" : "room")} ${mine.muted ? "Unmute" : "Mute"}</button>` : ""}
      ${onStage && ptt ? `<span class="ptt-hint">Hold <kbd>${esc(keyLabel(ptt))}</kbd> to talk</span>` : ""}
      ${mine && mine.role === "listener" ? `<button data-action="hand" aria-pressed="${mine.hand_raised}" aria-keyshortcuts="H">${icon("hand")} ${mine.hand_raised ? "Lower hand" : "Raise hand"}</button>` : ""}
      <button data-action="leave" class="danger">${icon("leave")} Leave</button>
      ${mine?.role === "host" ? `<button data-action="end" class="danger">End room</button>` : ""}
    </footer>
  </section>`;
}

function historyList(s: UiState): string {
  const h = s.history;
  const rows = h.rooms
    .map((r) => {
      const names = whoWasThere(r.participants);
      return `<li><button class="history-row" data-history-room="${r.id}" data-action="open-history" data-room="${r.id}">
        <span class="h-main"><span class="h-title">${esc(r.title)}</span>${r.hosted ? `<span class="badge role">Hosted</span>` : ""}</span>
        <span class="h-date">${esc(when(r.started_at))}</span>
        <span class="h-duration">${esc(duration(r))}</span>
        <span class="h-who">${names.map(esc).join(", ")}</span>
        <span class="h-count">${r.message_count} ${r.message_count === 1 ? "message" : "messages"}</span>
      </button></li>`;
    })
    .join("");
  const empty = !h.loading && !h.error && !h.rooms.length ? `<p class="muted">No rooms yet. Rooms you host or join are kept here, encrypted, on this computer only.</p>` : "";
  return `<section class="page history" data-screen="history">
    <header class="page-head"><h1 tabindex="-1">History</h1><p class="lede">Rooms you hosted or joined, kept encrypted on this computer only.</p></header>
    ${h.error ? `<p class="error" role="alert">${esc(h.error)}</p>` : ""}
    ${rows ? `<ul class="history-list" aria-label="Past rooms">${rows}</ul>` : ""}
    ${empty}
    ${h.loading ? `<p class="muted">Loading…</p>` : h.more ? `<button class="load-more" data-action="history-more">Load more</button>` : ""}
  </section>`;
}

function historyDetail(s: UiState): string {
  const d = s.detail;
  if (!d) return "";
  const r = d.room;
  const ps = participants(r.participants)
    .map(
      (p) => `<li class="participant">${avatar(p.key, p.name, "avatar sm")}<span class="p-name">${esc(p.name)}</span><span class="badge role" data-role="${p.role}">${ROLE_LABEL[p.role]}</span>
        ${verifiedMark(contact(s, p.key))}</li>`,
    )
    .join("");
  const lines = d.messages
    .map(
      (m) => `<li class="${m.mine ? "mine" : ""}" data-message="${m.id}"><span class="line-head"><strong>${esc(m.name)}</strong> <time datetime="${new Date(m.at).toISOString()}">${esc(when(m.at))}</time></span><span class="line-text">${esc(m.text)}</span></li>`,
    )
    .join("");
  return `<section class="page history-detail" data-screen="history" data-history-detail="${r.id}">
    <button class="back" data-action="history-back">${icon("back")} All rooms</button>
    <header class="page-head"><h1 tabindex="-1">${esc(r.title)}</h1><p class="lede">${esc(when(r.started_at))} · ${esc(duration(r))} · ${r.hosted ? "you hosted" : "you joined"} · ${r.message_count} ${r.message_count === 1 ? "message" : "messages"}</p></header>
    <div class="detail-body">
      <section class="card" aria-labelledby="participants-h"><h2 id="participants-h">Participants</h2><ul class="participants">${ps}</ul></section>
      <section class="card transcript" aria-labelledby="transcript-h"><h2 id="transcript-h">Chat</h2>
        ${d.error ? `<p class="error" role="alert">${esc(d.error)}</p>` : ""}
        ${d.loading ? `<p class="muted">Loading…</p>` : d.more ? `<button class="load-more" data-action="chat-more">Load earlier messages</button>` : ""}
        ${lines ? `<ol class="lines" data-testid="history-chat">${lines}</ol>` : d.loading ? "" : `<p class="muted">Nobody wrote in this room.</p>`}
      </section>
    </div>
  </section>`;
}

function deviceOptions(list: string[], chosen: string | null, what: string): string {
  const all = chosen && !list.includes(chosen) ? [...list, chosen] : list;
  return [
    `<option value=""${chosen == null ? " selected" : ""}>System default ${what}</option>`,
    ...all.map((d) => `<option value="${esc(d)}"${d === chosen ? " selected" : ""}>${esc(d)}${list.includes(d) ? "" : " (not connected)"}</option>`),
  ].join("");
}

function settings(s: UiState): string {
  const st: Settings | undefined = s.settings;
  const n = s.notes;
  const devs: Devices = s.devices?.status === "ok" ? s.devices.value : { inputs: [], outputs: [] };
  const level = meterPercent(s.inputDbfs);
  const toggle = (name: "noise_suppression" | "echo_cancellation", label: string, hint: string) =>
    `<label class="switch"><input type="checkbox" role="switch" name="${name}"${st?.[name] ? " checked" : ""}><span class="switch-track" aria-hidden="true"></span><span><span class="switch-label">${label}</span><small>${hint}</small></span></label>`;
  const theme = (v: string, label: string) =>
    `<label class="seg"><input type="radio" name="theme" value="${v}"${st?.theme === v ? " checked" : ""}><span>${label}</span></label>`;
  const pttKey = st?.push_to_talk_key ?? null;
  const audio = st
    ? `<form class="card" data-form="settings" aria-labelledby="audio-h">
      <h2 id="audio-h">Voice and audio</h2>
      ${n.settings ? `<p class="error" role="alert">${esc(n.settings)}</p>` : ""}
      ${s.devices?.status === "failed" ? `<p class="muted">Could not list audio devices: ${esc(s.devices.message)}</p>` : ""}
      <label>Microphone <select name="input_device">${deviceOptions(devs.inputs, st.input_device, "microphone")}</select></label>
      <div class="meter-row"><span id="mic-meter-label">Microphone level</span>
        <div class="meter" role="meter" aria-labelledby="mic-meter-label" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${level}" data-testid="mic-meter"><div class="meter-fill" style="width:${level}%"></div></div>
        ${n.mic ? `<p class="muted">The microphone test could not start: ${esc(n.mic)}</p>` : ""}</div>
      <label>Speakers <select name="output_device">${deviceOptions(devs.outputs, st.output_device, "speakers")}</select></label>
      <div><button type="button" data-action="test-sound">Play test sound</button></div>
      ${toggle("noise_suppression", "Noise suppression", "Filters out steady background noise such as fans and keyboards.")}
      ${toggle("echo_cancellation", "Echo cancellation", "Keeps what your speakers play out of your microphone.")}
      <h3>Push to talk</h3>
      <p class="muted">When a key is set, your microphone stays muted on stage unless you hold it.</p>
      <div class="ptt-row">
        <button type="button" data-action="ptt-capture" class="${s.capturing ? "capturing" : ""}" aria-pressed="${s.capturing}">${s.capturing ? "Press a key… (Escape clears)" : pttKey ? `Key: <kbd>${esc(keyLabel(pttKey))}</kbd> · Change` : "Press a key"}</button>
        ${pttKey && !s.capturing ? `<button type="button" data-action="ptt-clear">Turn off</button>` : ""}
      </div>
      <h3 id="theme-h">Appearance</h3>
      <div class="segmented" role="radiogroup" aria-labelledby="theme-h">${theme("system", "System")}${theme("light", "Light")}${theme("dark", "Dark")}</div>
    </form>`
    : `<section class="card"><h2>Voice and audio</h2>${n.settings ? `<p class="error" role="alert">${esc(n.settings)}</p>` : `<p class="muted">Loading settings…</p>`}</section>`;
  const note = (x: { ok: boolean; text: string } | undefined) =>
    x ? `<p class="${x.ok ? "ok" : "error"}" role="${x.ok ? "status" : "alert"}">${esc(x.text)}</p>` : "";
  return `<section class="page settings" data-screen="settings">
    <header class="page-head"><h1 tabindex="-1">Settings</h1></header>
    ${audio}
    <form class="card" data-form="passphrase" aria-labelledby="pass-h">
      <h2 id="pass-h">Change passphrase</h2>
      <p class="muted">Your history and identity are encrypted with it. There is no way to recover it if lost.</p>
      <label>Current passphrase <input name="old" type="password" required autocomplete="current-password"></label>
      <label>New passphrase <input name="new" type="password" required minlength="8" autocomplete="new-password" data-strength aria-describedby="new-strength"></label>
      <p class="hint" id="new-strength" data-strength-hint data-keep aria-live="polite"></p>
      <label>Repeat new passphrase <input name="confirm" type="password" required autocomplete="new-password"></label>
      ${note(n.passphrase)}
      <button type="submit" class="primary">Change passphrase</button>
    </form>
    <form class="card" data-form="backup" aria-labelledby="backup-h">
      <h2 id="backup-h">Export backup</h2>
      <p class="muted">An encrypted copy of your identity and history, opened with your passphrase.</p>
      <label>Save to (optional) <input name="path" placeholder="Default location" autocomplete="off"></label>
      ${note(n.backup)}
      <button type="submit">Export backup</button>
    </form>
  </section>`;
}

export function render(s: UiState): string {
  const err = s.error ? `<p class="error" role="alert">${esc(s.error)}</p>` : "";
  switch (s.screen) {
    case "loading":
      return `<section class="card onboarding"><p>Starting…</p></section>`;
    case "create":
      return `<section class="card onboarding" data-screen="create">
        <div class="logo big" aria-hidden="true"></div>
        <h1>Welcome to Salon</h1>
        <p class="lede">Live audio rooms where nobody in the middle can listen in. Your history stays on this computer, encrypted with your passphrase.</p>
        <form data-form="create">
          <label>Display name <input name="name" autocomplete="nickname" required maxlength="64"></label>
          <label>Passphrase <input name="passphrase" type="password" required minlength="8" data-strength aria-describedby="strength"></label>
          <p class="hint" id="strength" data-strength-hint data-keep aria-live="polite"></p>
          <label>Repeat passphrase <input name="confirm" type="password" required></label>
          ${err}
          <button type="submit" class="primary">Create my identity</button>
        </form>
      </section>`;
    case "unlock":
      return `<section class="card onboarding" data-screen="unlock">
        <div class="logo big" aria-hidden="true"></div>
        <h1>Unlock Salon</h1>
        <form data-form="unlock">
          <label>Passphrase <input name="passphrase" type="password" required autofocus></label>
          ${err}
          <button type="submit" class="primary">Unlock</button>
        </form>
      </section>`;
    default: {
      const page =
        s.screen === "home" ? home(s, err) : s.screen === "room" ? room(s, err) : s.screen === "history" ? (s.detail ? historyDetail(s) : historyList(s)) : settings(s);
      // While a dialog is open the rest of the window is inert: no focus, no clicks, hidden from screen readers.
      return `<div class="shell"${s.dialog ? " inert" : ""}>${nav(s)}<div class="content" id="content">${page}</div></div>${dialog(s)}`;
    }
  }
}
