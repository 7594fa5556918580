// The controller: renders the state, turns clicks, forms and keys into commands, and
// folds node events and command results back into the state.
import { api, errorCode, errorMessage, onNodeEvent, type Action, type HistoryRoom, type Settings, type Theme } from "./api";
import { PushToTalk } from "./ptt";
import { SpeakingAnnouncer } from "./speaking";
import {
  CHAT_PAGE,
  PAGE,
  chatCursor,
  chatPage,
  historyCursor,
  historyPage,
  initial,
  me,
  openDetail,
  reduce,
  settingsSaved,
  verified,
  type Screen,
  type UiState,
} from "./state";
import { keyLabel } from "./format";
import { ThemeController } from "./theme";
import { render, strength } from "./view";

export interface AppHandle {
  /** Resolves once the first screen is shown. */
  ready: Promise<void>;
  state: () => UiState;
  /** Removes every listener the app added (tests start several apps in one document). */
  stop: () => void;
}

/**
 * Opens a rendered <dialog> as a modal: the rest of the window turns inert and the top
 * layer shows it above everything. A DOM without showModal() (or one that refuses it)
 * gets the `open` attribute; the view marks the rest inert either way.
 */
function openModal(box: HTMLDialogElement): void {
  try {
    if (typeof box.showModal === "function") return box.showModal();
  } catch {
    // Not connected or already open some other way: fall through.
  }
  box.setAttribute("open", "");
}

function isTextEntry(t: EventTarget | null): boolean {
  if (!(t instanceof HTMLElement)) return false;
  if (t instanceof HTMLTextAreaElement || t.isContentEditable) return true;
  return t instanceof HTMLInputElement && !["checkbox", "radio", "range", "button", "submit"].includes(t.type);
}

export function start(root: HTMLElement, toastsEl: HTMLElement, win: Window = window): AppHandle {
  const doc = root.ownerDocument;
  let state: UiState = initial;
  let opener: HTMLElement | null = null;
  // The who-is-speaking sentence in the live region, changed only by the announcer.
  let speech = "";
  const announcer = new SpeakingAnnouncer((text) => {
    speech = text;
    draw();
  });
  // Listeners are kept to be removed by stop() (AbortSignal options are not everywhere).
  const added: [EventTarget, string, EventListener, boolean][] = [];
  const on = <E extends Event>(t: EventTarget, type: string, f: (ev: E) => void, capture = false) => {
    added.push([t, type, f as EventListener, capture]);
    t.addEventListener(type, f as EventListener, capture);
  };
  const theme = new ThemeController(doc.documentElement, typeof win.matchMedia === "function" ? (q) => win.matchMedia(q) : undefined);
  theme.set(ThemeController.remembered(win));

  const onStage = () => {
    const m = me(state);
    return !!m && m.role !== "listener";
  };
  // Press and release go out in order (a quick tap must not end unmuted). The node gates
  // transmission with the talk key and keeps the muted flag the room sees in step.
  let pttChain: Promise<unknown> = Promise.resolve();
  const ptt = new PushToTalk({
    key: () => state.settings?.push_to_talk_key ?? null,
    active: onStage,
    setMuted: (muted) => {
      pttChain = pttChain.then(() => attempt(() => api.pushToTalk(!muted)));
      return pttChain.then(() => undefined);
    },
  });

  /**
   * Renders the state. lit-html keeps every node it can, so focus, carets, typed text and
   * a dragged slider survive the level and link events that arrive several times a
   * second; only the chat's scroll needs help to follow new lines.
   */
  function draw() {
    const lines = root.querySelector(".chat .lines");
    const atBottom = !lines || lines.scrollHeight - lines.scrollTop - lines.clientHeight < 40;
    render(state, root, speech);
    const newLines = root.querySelector(".chat .lines");
    if (newLines && atBottom) newLines.scrollTop = newLines.scrollHeight;
    const box = root.querySelector("dialog");
    if (box && !box.open) openModal(box);
  }

  function set(next: UiState) {
    const hadDialog = !!state.dialog;
    const hadMenu = state.menu;
    state = next;
    draw();
    const r = state.room;
    announcer.update(r ? r.members.filter((m) => !m.me && state.speaking[m.key]) : null);
    // Focus follows dialogs and menus in and back out.
    if (!hadDialog && state.dialog) {
      const box = root.querySelector("dialog");
      (box?.querySelector<HTMLElement>("[autofocus]") ?? box?.querySelector<HTMLElement>("button"))?.focus();
    } else if (hadDialog && !state.dialog) {
      if (opener?.isConnected) opener.focus();
      opener = null;
    }
    if (state.menu && state.menu !== hadMenu) {
      root.querySelector<HTMLElement>(`[data-menu="${CSS.escape(state.menu)}"] input, [data-menu="${CSS.escape(state.menu)}"] [role=menuitem]`)?.focus();
    }
    while (state.toasts.length) {
      toast(state.toasts[0]);
      state = { ...state, toasts: state.toasts.slice(1) };
    }
  }

  function toast(text: string) {
    const t = doc.createElement("div");
    t.className = "toast";
    t.textContent = text;
    // A modal dialog makes the rest of the window inert and covers it: while one is open,
    // toasts show (and are announced) inside it.
    (root.querySelector("dialog[open] .toasts") ?? toastsEl).appendChild(t);
    setTimeout(() => t.remove(), 5000);
  }

  async function attempt(f: () => Promise<unknown>) {
    try {
      await f();
    } catch (e) {
      set({ ...state, error: errorMessage(e) });
      if (errorCode(e) === "wrong_passphrase") root.querySelector<HTMLInputElement>("input[name=passphrase]")?.focus();
    }
  }

  // ——— Loading ———

  async function loadHome() {
    const [contacts, recent] = await Promise.allSettled([api.contacts(), api.historyRooms(null, 5)]);
    set({
      ...state,
      contacts: contacts.status === "fulfilled" ? { status: "ok", value: contacts.value } : { status: "failed", message: errorMessage(contacts.reason) },
      recent: recent.status === "fulfilled" ? { status: "ok", value: recent.value } : { status: "failed", message: errorMessage(recent.reason) },
    });
  }

  async function loadContacts() {
    try {
      // Awaited before `state` is read: a chat line that arrives meanwhile must stay.
      const value = await api.contacts();
      set({ ...state, contacts: { status: "ok", value } });
    } catch {
      // Keep what is shown; the home screen reloads them.
    }
  }

  async function loadHistory(append: boolean) {
    set({ ...state, history: { ...state.history, loading: true, error: undefined } });
    try {
      const rooms = await api.historyRooms(append ? historyCursor(state) : null, PAGE);
      set(historyPage(state, rooms, append));
    } catch (e) {
      set({ ...state, history: { ...state.history, loading: false, error: errorMessage(e) } });
    }
  }

  async function loadChat(room: number, older: boolean) {
    if (!state.detail) return;
    set({ ...state, detail: { ...state.detail, loading: true, error: undefined } });
    try {
      const page = await api.historyChat(room, older ? chatCursor(state) : null, CHAT_PAGE);
      set(chatPage(state, room, page));
    } catch (e) {
      if (state.detail?.room.id === room) set({ ...state, detail: { ...state.detail, loading: false, error: errorMessage(e) } });
    }
  }

  async function loadSettings() {
    try {
      const s = await api.getSettings();
      theme.set(s.theme);
      ThemeController.remember(win, s.theme);
      set(settingsSaved(state, s));
      void loadPttReach(s.push_to_talk_key);
    } catch (e) {
      if (state.screen === "settings") set({ ...state, notes: { ...state.notes, settings: errorMessage(e) } });
    }
  }

  /** Where the push-to-talk key works (the shell knows the session: X11 or Wayland). */
  async function loadPttReach(key: string | null) {
    try {
      const pttReach = await api.pushToTalkReach(key);
      set({ ...state, pttReach });
    } catch {
      // Without it the settings just say less.
    }
  }

  async function loadDevices() {
    try {
      const value = await api.devices();
      set({ ...state, devices: { status: "ok", value } });
    } catch (e) {
      set({ ...state, devices: { status: "failed", message: errorMessage(e) } });
    }
  }

  /** Saves the whole settings object with one change; the node's answer is what applies. */
  async function saveSettings(change: Partial<Settings>) {
    if (!state.settings) return;
    const next: Settings = { ...state.settings, ...change };
    try {
      const saved = await api.setSettings(next);
      theme.set(saved.theme);
      ThemeController.remember(win, saved.theme);
      set(settingsSaved(state, saved));
      void loadPttReach(saved.push_to_talk_key);
    } catch (e) {
      // The old selection stays: the redraw puts back what the settings we hold say.
      set({ ...state, capturing: false, notes: { ...state.notes, settings: errorMessage(e) } });
    }
  }

  // ——— Navigation ———

  function go(screen: Screen) {
    const from = state.screen;
    if (from === "settings" && screen !== "settings") void api.micTest(false).catch(() => undefined);
    let next: UiState = { ...state, screen, error: undefined, menu: undefined, capturing: false };
    if (screen === "history") next = { ...next, detail: undefined };
    if (screen === "settings") next = { ...next, notes: {} };
    set(next);
    if (screen === "home") void loadHome();
    if (screen === "history") void loadHistory(false);
    if (screen === "settings" && from !== "settings") {
      void api.micTest(true).catch((e: unknown) => set({ ...state, notes: { ...state.notes, mic: errorMessage(e) } }));
      void loadDevices();
      void loadSettings();
    }
    root.querySelector<HTMLElement>("#content h1")?.focus?.();
  }

  async function openHistory(id: number) {
    const all: HistoryRoom[] = [...state.history.rooms, ...(state.recent.status === "ok" ? state.recent.value : [])];
    const room = all.find((r) => r.id === id);
    if (!room) return;
    if (state.screen === "settings") void api.micTest(false).catch(() => undefined);
    set({ ...openDetail(state, room), error: undefined, menu: undefined });
    await loadChat(id, false);
  }

  async function unlocked(profile: { name: string; fingerprint: string }) {
    set({ ...state, profile, screen: "home", error: undefined });
    void loadSettings();
    await loadHome();
  }

  // ——— Forms ———

  on<SubmitEvent>(root, "submit", (ev) => {
    ev.preventDefault();
    const form = ev.target as HTMLFormElement;
    const data = Object.fromEntries(new FormData(form)) as Record<string, string>;
    switch (form.dataset.form) {
      case "create":
        if (data.passphrase !== data.confirm) return set({ ...state, error: "The passphrases differ" });
        return void attempt(async () => unlocked(await api.createProfile(data.name, data.passphrase)));
      case "unlock":
        return void attempt(async () => unlocked(await api.unlock(data.passphrase)));
      case "host":
        return void attempt(async () => {
          const invite = await api.hostRoom(data.title);
          set({ ...state, invite, error: undefined });
        });
      case "join":
        return void attempt(async () => {
          await api.joinRoom(data.invite.trim());
          set({ ...state, screen: "room", error: undefined });
        });
      case "chat":
        if (!data.text?.trim()) return;
        return void attempt(async () => {
          await api.sendChat(data.text);
          form.reset();
        });
      case "passphrase": {
        const note = (ok: boolean, text: string) => set({ ...state, notes: { ...state.notes, passphrase: { ok, text } } });
        if (data.new !== data.confirm) return note(false, "The new passphrases differ");
        return void api.changePassphrase(data.old, data.new).then(
          () => {
            form.reset();
            const hint = form.querySelector("[data-strength-hint]");
            if (hint) hint.textContent = "";
            note(true, "Passphrase changed. Use the new one from now on.");
          },
          (e: unknown) => {
            note(false, errorMessage(e));
            if (errorCode(e) === "wrong_passphrase") form.querySelector<HTMLInputElement>("input[name=old]")?.focus();
          },
        );
      }
      case "backup": {
        const note = (ok: boolean, text: string) => set({ ...state, notes: { ...state.notes, backup: { ok, text } } });
        return void api.exportBackup(data.path?.trim() || null).then(
          (path) => note(true, `Backup written to ${path} and ${path}.header — keep both files together`),
          (e: unknown) => note(false, errorMessage(e)),
        );
      }
    }
  });

  on<Event>(root, "change", (ev) => {
    const el = ev.target as HTMLInputElement | HTMLSelectElement;
    if (el.closest("form")?.dataset.form !== "settings") return;
    switch (el.name) {
      case "input_device":
      case "output_device":
        return void saveSettings({ [el.name]: el.value || null });
      case "noise_suppression":
      case "echo_cancellation":
        return void saveSettings({ [el.name]: (el as HTMLInputElement).checked });
      case "theme":
        return void saveSettings({ theme: el.value as Theme });
    }
  });

  const volumeTimers = new Map<string, ReturnType<typeof setTimeout>>();
  on<Event>(root, "input", (ev) => {
    const el = ev.target as HTMLInputElement;
    if (el.dataset.strength !== undefined) {
      const hint = el.closest("form")?.querySelector("[data-strength-hint]");
      if (hint) hint.textContent = el.value ? `Strength: ${strength(el.value)}` : "";
    }
    const key = el.dataset.volume;
    if (key !== undefined) {
      const volume = Number(el.value) / 100;
      set({ ...state, volumes: { ...state.volumes, [key]: volume } });
      // A drag sends many input events: the last value within 60 ms is the one sent.
      clearTimeout(volumeTimers.get(key));
      volumeTimers.set(key, setTimeout(() => void attempt(() => api.setPeerVolume(key, volume)), 60));
    }
  });

  // ——— Clicks ———

  /** Closes the open dialog; dismissing a stage invitation declines it, so the inviter is not left waiting. */
  function closeDialog() {
    const declining = state.dialog?.kind === "stage_invite";
    set({ ...state, dialog: undefined });
    if (declining) void attempt(() => api.answerStageInvite(false));
  }

  async function act(action: string, el: HTMLElement) {
    const mine = me(state);
    const target = el.dataset.target ?? "";
    switch (action) {
      case "mute": {
        const pttKey = state.settings?.push_to_talk_key;
        // With push-to-talk the microphone opens only while the key is held.
        if (pttKey && mine?.muted) return toast(`Push to talk is on: hold ${keyLabel(pttKey)} to talk`);
        return api.setMuted(!mine?.muted);
      }
      case "hand":
        return api.setHand(!mine?.hand_raised);
      case "leave":
        return api.leaveRoom();
      case "end":
        return api.endRoom();
      case "copy-invite":
        await navigator.clipboard?.writeText(state.invite ?? "");
        return toast("Invite copied");
      case "revoke-invite": {
        // The node also sends `invite_changed`, which tells the user.
        const invite = await api.revokeInvite();
        return set({ ...state, invite });
      }
      case "show-invite":
        opener = el;
        return set({ ...state, dialog: { kind: "invite" }, menu: undefined });
      case "moderate":
        set({ ...state, menu: undefined });
        return api.moderate(target, el.dataset.op as Action);
      case "menu":
        return set({ ...state, menu: state.menu === target ? undefined : target });
      case "safety": {
        const trigger = state.menu ? root.querySelector<HTMLElement>(`[data-action=menu][data-target="${CSS.escape(state.menu)}"]`) : el;
        const number = await api.safetyNumber(target);
        opener = trigger;
        return set({ ...state, menu: undefined, dialog: { kind: "safety", number } });
      }
      case "verify": {
        const on = el.dataset.on === "true";
        try {
          await api.verifyContact(target, on);
        } catch (e) {
          if (state.dialog?.kind === "safety") set({ ...state, dialog: { ...state.dialog, error: errorMessage(e) } });
          return;
        }
        // The node has saved it: the mark changes here, without reloading every contact.
        return set(verified(state, target, on));
      }
      case "close-dialog":
        return closeDialog();
      case "stage-answer":
        set({ ...state, dialog: undefined });
        return api.answerStageInvite(el.dataset.accept === "true");
      case "open-history":
        return openHistory(Number(el.dataset.room));
      case "history-more":
        return loadHistory(true);
      case "history-back":
        set({ ...state, detail: undefined });
        return loadHistory(false);
      case "chat-more":
        return state.detail ? loadChat(state.detail.room.id, true) : undefined;
      case "test-sound":
        return api.testSound();
      case "ptt-capture":
        return set({ ...state, capturing: !state.capturing });
      case "ptt-clear":
        return saveSettings({ push_to_talk_key: null });
    }
  }

  on<MouseEvent>(root, "click", (ev) => {
    const t = ev.target as HTMLElement;
    // A click on the <dialog> itself, not on its content, landed on the backdrop.
    if (t instanceof HTMLDialogElement) return closeDialog();
    // A click outside an open person menu closes it.
    if (state.menu && !t.closest(".popover") && !t.closest("[data-action=menu]")) set({ ...state, menu: undefined });
    const navEl = t.closest<HTMLElement>("[data-nav]");
    if (navEl?.dataset.nav) return go(navEl.dataset.nav as Screen);
    const el = t.closest<HTMLElement>("[data-action]");
    if (el?.dataset.action) void attempt(() => act(el.dataset.action as string, el));
  });

  // ——— Keys ———

  function trapFocus(ev: KeyboardEvent, box: HTMLElement) {
    const items = [...box.querySelectorAll<HTMLElement>("button, input, select, textarea, a[href], [tabindex]:not([tabindex='-1'])")];
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (ev.shiftKey && doc.activeElement === first) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && doc.activeElement === last) {
      ev.preventDefault();
      first.focus();
    } else if (!box.contains(doc.activeElement)) {
      ev.preventDefault();
      first.focus();
    }
  }

  on<KeyboardEvent>(doc, "keydown", (ev) => {
    const t = ev.target as HTMLElement;
    if (state.capturing) {
      // Tab keeps moving focus (a Tab push-to-talk key would trap keyboard users).
      if (ev.key === "Tab") return set({ ...state, capturing: false });
      ev.preventDefault();
      void saveSettings({ push_to_talk_key: ev.key === "Escape" ? null : ev.code });
      return;
    }
    if (ev.key === "Escape") {
      if (state.dialog) {
        // Handled here: the browser's own Escape would close the <dialog> behind the state's back.
        ev.preventDefault();
        return closeDialog();
      }
      if (state.menu) {
        const key = state.menu;
        set({ ...state, menu: undefined });
        root.querySelector<HTMLElement>(`[data-action=menu][data-target="${CSS.escape(key)}"]`)?.focus();
        return;
      }
    }
    const dialogBox = root.querySelector<HTMLElement>("dialog");
    if (ev.key === "Tab" && dialogBox) return trapFocus(ev, dialogBox);
    if (t instanceof HTMLElement && t.getAttribute("role") === "menuitem" && ["ArrowDown", "ArrowUp", "Home", "End"].includes(ev.key)) {
      const items = [...(t.closest("[role=menu]")?.querySelectorAll<HTMLElement>("[role=menuitem]") ?? [])];
      const i = items.indexOf(t);
      const j = ev.key === "Home" ? 0 : ev.key === "End" ? items.length - 1 : (i + (ev.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
      ev.preventDefault();
      items[j]?.focus();
      return;
    }
    // Push-to-talk; printable keys still type into text fields.
    const typing = isTextEntry(t) && ev.key.length === 1;
    if (!typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey && ptt.keydown(ev)) {
      ev.preventDefault();
      return;
    }
    if (state.screen !== "room" || t.closest?.("input, textarea, select") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "m" || ev.key === "M") void attempt(() => act("mute", root));
    if (ev.key === "h" || ev.key === "H") void attempt(() => act("hand", root));
  });

  // The browser's own close request (Escape the page did not see): closing goes through
  // the state, so a dismissed stage invitation is still declined. `cancel` does not bubble.
  on<Event>(
    root,
    "cancel",
    (ev) => {
      if (!(ev.target instanceof HTMLDialogElement)) return;
      ev.preventDefault();
      closeDialog();
    },
    true,
  );

  // Tabbing out of an open person menu closes it.
  on<FocusEvent>(doc, "focusin", (ev) => {
    const t = ev.target as HTMLElement;
    if (state.menu && t instanceof HTMLElement && !t.closest(".popover") && !t.closest("[data-action=menu]")) set({ ...state, menu: undefined });
  });

  on<KeyboardEvent>(doc, "keyup", (ev) => {
    if (ptt.keyup(ev)) ev.preventDefault();
  });
  on(win, "blur", () => ptt.blur());

  // ——— Node events ———

  function onEvent(e: Parameters<typeof reduce>[1]) {
    const wasInRoom = !!state.room;
    set(reduce(state, e));
    if (e.event === "left" && state.screen === "home") void loadHome();
    if (!wasInRoom && state.room) void loadContacts();
  }

  let unlisten: (() => void) | undefined;
  async function boot() {
    unlisten = await onNodeEvent(onEvent);
    const status = await api.profileStatus();
    if (status.unlocked) {
      set({ ...state, screen: "home" });
      void loadSettings();
      await loadHome();
    } else set({ ...state, screen: status.exists ? "unlock" : "create" });
  }

  return {
    ready: boot(),
    state: () => state,
    stop: () => {
      for (const [t, type, f, capture] of added) t.removeEventListener(type, f, capture);
      announcer.stop();
      unlisten?.();
    },
  };
}
