/**
 * Per-template webhook secrets: the HMAC key that signs the `api_call` end-action webhooks of one
 * template's runs, so each receiver holds a secret that signs only its own template's deliveries.
 * A template without one is signed with the fleet-wide `FLEET_WEBHOOK_SECRET`.
 *
 * Key (under the fleet prefix): `<p>:webhook-secrets`, a hash: template name → secret. Secrets are
 * written here and read by the end-action worker; no API answer ever returns one after it was set.
 */
import type { Redis } from 'ioredis';
import { FleetError } from '../errors.js';

/** Shortest webhook secret accepted, characters. */
export const MIN_WEBHOOK_SECRET_LENGTH = 16;

export class WebhookSecretStore {
  /**
   * @param redis - a connection for ordinary commands.
   * @param prefix - the fleet's key prefix (`FLEET_QUEUE_PREFIX`).
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {}

  get key(): string {
    return `${this.prefix}:webhook-secrets`;
  }

  /** @throws FleetError `INVALID_INPUT` for a secret shorter than {@link MIN_WEBHOOK_SECRET_LENGTH}. */
  async set(template: string, secret: string): Promise<void> {
    if (secret.length < MIN_WEBHOOK_SECRET_LENGTH) throw new FleetError('INVALID_INPUT', `the webhook secret of "${template}" must be at least ${MIN_WEBHOOK_SECRET_LENGTH} characters (openssl rand -hex 32)`);
    await this.redis.hset(this.key, template, secret);
  }

  /** The template's secret, or undefined when it uses the fleet-wide one. */
  async get(template: string): Promise<string | undefined> {
    return (await this.redis.hget(this.key, template)) ?? undefined;
  }

  /** Templates that have their own secret. */
  async templates(): Promise<string[]> {
    return (await this.redis.hkeys(this.key)).sort();
  }

  /** @returns false when the template had no secret of its own. */
  async remove(template: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, template)) === 1;
  }
}
