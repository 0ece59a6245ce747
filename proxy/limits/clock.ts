/** Epoch milliseconds. Injected so every limit and baseline can be tested without waiting. */
export type Clock = () => number;

export const systemClock: Clock = Date.now;
