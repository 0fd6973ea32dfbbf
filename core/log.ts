/**
 * Structured logging shared by the agent, the handlers and local mode. Domain code receives a Logger;
 * only the JSON-lines implementation below writes (to stdout, where CloudWatch or the terminal reads it).
 */
export interface Logger {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
type Level = keyof typeof LEVELS;

/** JSON-lines logger (CloudWatch parses each line). Field values are the caller's job to keep secret-free. */
export function jsonLogger(component: string, level: string | undefined = process.env.LOG_LEVEL): Logger {
  const threshold = LEVELS[(level as Level) ?? 'info'] ?? LEVELS.info;
  const write = (lvl: Exclude<Level, 'silent' | 'debug'>, event: string, fields?: Record<string, unknown>): void => {
    if (LEVELS[lvl] < threshold) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level: lvl, component, event, ...fields });
    if (lvl === 'error') console.error(line);
    else console.log(line);
  };
  return {
    info: (e, f) => write('info', e, f),
    warn: (e, f) => write('warn', e, f),
    error: (e, f) => write('error', e, f),
  };
}
