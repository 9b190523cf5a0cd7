import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiTokens } from './api/index.js';

/** Operator bearer tokens: generated on first start (mode 0600), reused afterwards. */
export function ensureOperatorTokens(dataDir: string): ApiTokens & { adminPath: string } {
  const read = (file: string) => {
    const path = join(dataDir, file);
    if (!existsSync(path)) writeFileSync(path, randomBytes(24).toString('base64url') + '\n', { mode: 0o600 });
    return readFileSync(path, 'utf8').trim();
  };
  return { admin: read('admin.token'), readonly: read('readonly.token'), adminPath: join(dataDir, 'admin.token') };
}
