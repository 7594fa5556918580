import { describe, expect, it, vi } from "vitest";

// The Tauri IPC, mocked: each test decides what the Rust side answers.
const calls: unknown[][] = [];
let answer: (cmd: string, args?: unknown) => Promise<unknown> = async () => undefined;
vi.mock("@tauri-apps/api/core", () => ({
  invoke: (cmd: string, args?: unknown) => {
    calls.push([cmd, args]);
    return answer(cmd, args);
  },
}));
vi.mock("@tauri-apps/api/event", () => ({ listen: async () => () => {} }));

import type * as Api from "./api";
import type * as Gen from "./bindings";

// Compile-time: the hand-written data types are the generated ones (tsc fails otherwise).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameTypes: [
  Same<Api.Settings, Gen.SettingsInfo>,
  Same<Api.Contact, Gen.ContactInfo>,
  Same<Api.SafetyNumber, Gen.SafetyNumberInfo>,
  Same<Api.Devices, Gen.DeviceList>,
  Same<Api.HistoryRoom, Gen.HistoryRoom>,
  Same<Api.HistoryMessage, Gen.HistoryMessage>,
  Same<Api.RoomInfo, Gen.RoomInfo>,
  Same<Api.LinkInfo, Gen.LinkInfo>,
  Same<Api.PeerLevel, Gen.PeerLevel>,
  Same<Api.Theme, Gen.ThemeChoice>,
] = [true, true, true, true, true, true, true, true, true, true];

const { api, errorCode, errorMessage } = await import("./api");
const { commands } = await import("./bindings");

describe("api", () => {
  it("maps each call onto its Tauri command with named arguments", async () => {
    answer = async () => "salon:abc";
    await expect(api.hostRoom("Jazz")).resolves.toBe("salon:abc");
    expect(calls.at(-1)).toEqual(["host_room", { title: "Jazz" }]);
    await api.moderate("bb", "invite_to_stage");
    expect(calls.at(-1)).toEqual(["moderate", { target: "bb", action: "invite_to_stage" }]);
  });

  it("the new commands send the argument names the Rust side expects", async () => {
    answer = async () => null;
    await api.historyRooms(41, 20);
    expect(calls.at(-1)).toEqual(["history_rooms", { before: 41, limit: 20 }]);
    await api.historyChat(7, null, 50);
    expect(calls.at(-1)).toEqual(["history_chat", { room: 7, before: null, limit: 50 }]);
    await api.changePassphrase("old pass", "new pass");
    expect(calls.at(-1)).toEqual(["change_passphrase", { oldPassphrase: "old pass", newPassphrase: "new pass" }]);
    await api.exportBackup(null);
    expect(calls.at(-1)).toEqual(["export_backup", { path: null }]);
    await api.micTest(true);
    expect(calls.at(-1)).toEqual(["mic_test", { on: true }]);
    await api.safetyNumber("bb");
    expect(calls.at(-1)).toEqual(["safety_number", { target: "bb" }]);
    const settings = { input_device: null, output_device: "USB", push_to_talk_key: "Space", noise_suppression: true, echo_cancellation: false, theme: "dark" as const };
    await api.setSettings(settings);
    expect(calls.at(-1)).toEqual(["set_settings", { settings }]);
    for (const [f, cmd] of [[api.contacts, "contacts"], [api.devices, "devices"], [api.getSettings, "get_settings"], [api.testSound, "test_sound"]] as const) {
      await f();
      expect(calls.at(-1)).toEqual([cmd, undefined]);
    }
  });

  it("the hand-written types match the generated ones", () => {
    expect(sameTypes.every(Boolean)).toBe(true);
  });

  it("every wrapper sends what the generated bindings send (command name and argument names)", async () => {
    answer = async () => null;
    const settings = { input_device: "USB", output_device: null, push_to_talk_key: "Space", noise_suppression: false, echo_cancellation: true, theme: "light" as const };
    const pairs: [() => Promise<unknown>, () => Promise<unknown>][] = [
      [() => api.historyRooms(9, 20), () => commands.historyRooms(9, 20)],
      [() => api.historyChat(3, 77, 50), () => commands.historyChat(3, 77, 50)],
      [() => api.contacts(), () => commands.contacts()],
      [() => api.safetyNumber("bb"), () => commands.safetyNumber("bb")],
      [() => api.devices(), () => commands.devices()],
      [() => api.getSettings(), () => commands.getSettings()],
      [() => api.setSettings(settings), () => commands.setSettings(settings)],
      [() => api.micTest(false), () => commands.micTest(false)],
      [() => api.testSound(), () => commands.testSound()],
      [() => api.changePassphrase("a", "b"), () => commands.changePassphrase("a", "b")],
      [() => api.exportBackup("/tmp/x"), () => commands.exportBackup("/tmp/x")],
      [() => api.pushToTalk(true), () => commands.pushToTalk(true)],
      [() => api.setPeerVolume("bb", 1.5), () => commands.setPeerVolume("bb", 1.5)],
      [() => api.verifyContact("bb", true), () => commands.verifyContact("bb", true)],
      [() => api.moderate("bb", "mute"), () => commands.moderate("bb", "mute")],
      [() => api.unlock("pw"), () => commands.unlock("pw")],
      [() => api.hostRoom("t"), () => commands.hostRoom("t")],
      [() => api.joinRoom("salon:x"), () => commands.joinRoom("salon:x")],
      [() => api.setMuted(true), () => commands.setMuted(true)],
      [() => api.setHand(true), () => commands.setHand(true)],
      [() => api.sendChat("hi"), () => commands.sendChat("hi")],
    ];
    for (const [ours, generated] of pairs) {
      await ours();
      const a = calls.at(-1);
      await generated();
      expect(a).toEqual(calls.at(-1));
    }
  });

  it("a wrong passphrase arrives as a typed {code, message}", async () => {
    const rejection = { code: "wrong_passphrase", message: "wrong passphrase: try again" };
    answer = () => Promise.reject(rejection);
    const e = await api.unlock("nope").then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(errorCode(e)).toBe("wrong_passphrase");
    expect(errorMessage(e)).toContain("wrong passphrase");
  });
});
