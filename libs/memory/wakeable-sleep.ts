// A loop's pause that another part can end early (the drainer when it closes, the embedder when rows arrive).

export class WakeableSleep {
  private wakeUp: (() => void) | null = null;

  /** Resolves after `ms`, or at the next `wake`. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        if (self.wakeUp === done) self.wakeUp = null;
        resolve();
      }
      this.wakeUp = done;
    });
  }

  /** Ends the pause under way, if any. */
  wake(): void {
    this.wakeUp?.();
  }
}
