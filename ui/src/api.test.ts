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

const { api, errorCode, errorMessage } = await import("./api");

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
