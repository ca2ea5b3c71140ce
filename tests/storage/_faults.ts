/**
 * Disk faults for storage tests: calls of `Deno.FsFile.prototype.writeSync` or `syncData` that
 * fail as an I/O error would (a `writeSync` throws, a `syncData` rejects).
 *
 * @module
 */

/** A fault armed by {@linkcode failCalls}. */
export interface ArmedFault {
  /** Puts the real method back. */
  restore(): void;
  /** True once a call was made to fail. */
  fired(): boolean;
}

/**
 * Makes the first call of `method` for which `fails(n, args)` is true fail, once (`n` counts the
 * calls from now, from 1); the real method serves every other call until `restore`.
 */
export function failCalls(
  method: "writeSync" | "syncData",
  fails: (n: number, args: unknown[]) => boolean,
): ArmedFault {
  const proto = Deno.FsFile.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = proto[method];
  let calls = 0;
  let fired = false;
  proto[method] = function (this: Deno.FsFile, ...args: unknown[]) {
    calls++;
    if (!fired && fails(calls, args)) {
      fired = true;
      if (method === "syncData") return Promise.reject(new Error("simulated EIO on fdatasync"));
      throw new Error("simulated EIO on write");
    }
    return original.apply(this, args);
  };
  return {
    restore: () => {
      proto[method] = original;
    },
    fired: () => fired,
  };
}
