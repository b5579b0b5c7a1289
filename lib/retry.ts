// The retry schedule (Momentum's retry_interval and max_retry_interval): after the n-th failed
// attempt the next one comes min(retry_interval * 2^(n-1), max_retry_interval) later.

export function retryDelayMs(attempts: number, retryIntervalMs: number, maxRetryIntervalMs: number): number {
  const n = Math.max(1, Math.floor(attempts));
  // 2^(n-1) passes any cap long before n reaches 60; stop there to keep the number finite.
  const delay = retryIntervalMs * 2 ** Math.min(n - 1, 60);
  return Math.min(delay, maxRetryIntervalMs);
}
