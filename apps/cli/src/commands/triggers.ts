/**
 * Inbound triggers from the command line (the same definitions `PUT /api/triggers/:name` writes, in
 * Redis), and per-template webhook secrets:
 *
 *   fleet triggers add <name> --workflow W (--secret-env VAR | --generate-secret)
 *                      --requirements-template '…{{body.x}}…' [--var k='{{body.y}}']… [--replace]
 *   fleet triggers list | show <name> | remove <name>
 *   fleet triggers fire <name> (--data JSON | --file F) [--secret-env VAR] [--delivery-id ID]   (HTTP API)
 *   fleet workflows webhook-secret <template> (--secret-env VAR | --generate | --remove)
 *
 * A secret is read from the named environment variable (so it is not in the shell history) or
 * generated and printed once on stdout; it is never shown again.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  FleetError,
  TemplateRegistry,
  TriggerRegistry,
  WebhookSecretStore,
  generateTriggerSecret,
  signedHeaders,
  validateVariables,
  viewTrigger,
} from '@agentfleet/core';
import type { Command } from 'commander';
import { parseVars, positiveInt, say, withClient } from '../shared.js';
import { RawBody, apiRequest } from '../api-client.js';
import { apiOptions, clientOptions } from './submit.js';

/** The secret named by `--secret-env VAR`. @throws FleetError `INVALID_INPUT` when VAR is unset or empty. */
function secretFromEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new FleetError('INVALID_INPUT', `--secret-env ${name}: the environment variable ${name} is not set; export it (e.g. ${name}=$(openssl rand -hex 32))`);
  return value;
}

export function register(program: Command): void {
  const triggers = program.command('triggers').description('define, list, show and remove inbound triggers (POST /api/triggers/<name> starts a run)');

  triggers
    .command('add')
    .description('define a trigger: which workflow a delivery starts and how its JSON body maps into requirements and variables')
    .argument('<name>')
    .requiredOption('-w, --workflow <name>', 'template or built-in workflow each delivery starts')
    .requiredOption('--requirements-template <text>', "the run's requirements, e.g. 'Fix: {{body.issue.title}}'")
    .option('--var <key=template>', "a variable from the body, e.g. repo='{{body.repository.full_name}}' (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--secret-env <VAR>', 'take the HMAC secret of signed deliveries from this environment variable')
    .option('--generate-secret', 'generate a secret and print it once on stdout', false)
    .option('--debounce-key <template>', 'one run per burst of deliveries with the same key, e.g. {{body.repository.full_name}}')
    .option('--debounce-period <s>', 'a delivery within this many seconds of the previous one with the same key joins its run', positiveInt('--debounce-period'))
    .option('--description <text>', 'what the trigger is for', '')
    .option('--replace', 'replace a trigger of the same name (keeps its secret unless a new one is given)', false)
    .action(
      async (
        name: string,
        opts: { workflow: string; requirementsTemplate: string; var: string[]; secretEnv?: string; generateSecret: boolean; debounceKey?: string; debouncePeriod?: number; description: string; replace: boolean },
      ) => {
        if (opts.secretEnv && opts.generateSecret) throw new FleetError('INVALID_INPUT', 'give --secret-env or --generate-secret, not both');
        if ((opts.debounceKey === undefined) !== (opts.debouncePeriod === undefined)) throw new FleetError('INVALID_INPUT', '--debounce-key and --debounce-period go together');
        const secret = opts.generateSecret ? generateTriggerSecret() : opts.secretEnv ? secretFromEnv(opts.secretEnv) : undefined;
        await withClient(async (client, config) => {
          const registry = new TriggerRegistry(client.redis, config.queuePrefix);
          if (!opts.replace && (await registry.find(name))) throw new FleetError('CONFLICT', `trigger "${name}" exists; pass --replace to replace it`);
          const variables = parseVars(opts.var);
          validateVariables((await new TemplateRegistry(client.redis, config.queuePrefix).get(opts.workflow)).definition, variables);
          const { trigger } = await registry.put(name, {
            workflow: opts.workflow,
            requirements_template: opts.requirementsTemplate,
            variables,
            description: opts.description,
            ...(secret !== undefined ? { secret } : {}),
            ...(opts.debounceKey !== undefined && opts.debouncePeriod !== undefined ? { debounce: { key: opts.debounceKey, period_s: opts.debouncePeriod } } : {}),
          });
          say(`trigger ${name}: POST /api/triggers/${name} starts ${trigger.workflow}${trigger.secret ? ' (signed deliveries or an API key)' : ' (API keys only: no secret)'}`);
          if (opts.generateSecret) process.stdout.write(`${secret}\n`);
        });
      },
    );

  triggers
    .command('list')
    .description('list the triggers')
    .action(async () => {
      await withClient(async (client, config) => {
        for (const t of await new TriggerRegistry(client.redis, config.queuePrefix).list()) {
          process.stdout.write(`${t.name.padEnd(24)} ${t.workflow.padEnd(24)} ${(t.secret ? 'signed' : 'key-only').padEnd(9)} ${t.debounce ? `debounce ${t.debounce.period_s}s ` : ''}${t.description}\n`);
        }
      });
    });

  triggers
    .command('show')
    .description("a trigger's definition as JSON (never its secret)")
    .argument('<name>')
    .action(async (name: string) => {
      await withClient(async (client, config) => {
        process.stdout.write(JSON.stringify(viewTrigger(await new TriggerRegistry(client.redis, config.queuePrefix).get(name)), null, 2) + '\n');
      });
    });

  triggers
    .command('remove')
    .description('remove a trigger')
    .argument('<name>')
    .action(async (name: string) => {
      await withClient(async (client, config) => {
        const registry = new TriggerRegistry(client.redis, config.queuePrefix);
        if (!(await registry.remove(name))) await registry.get(name);
        say(`trigger ${name} removed`);
      });
    });

  apiOptions(
    triggers
      .command('fire')
      .description('send one delivery to a trigger through the HTTP API: signed with --secret-env, else with the API key; prints the run id')
      .argument('<name>')
      .option('--data <json>', 'the JSON body')
      .option('-f, --file <path>', 'read the JSON body from a file')
      .option('--secret-env <VAR>', "sign the delivery with the trigger's secret from this environment variable (no API key sent)")
      .option('--delivery-id <id>', 'the delivery id (keep it when retrying one delivery)'),
  ).action(async (name: string, opts: { data?: string; file?: string; secretEnv?: string; deliveryId?: string; managerUrl: string; apiKey?: string }) => {
    if ((opts.data === undefined) === (opts.file === undefined)) throw new FleetError('INVALID_INPUT', 'give the body with --data \'{"…": …}\' or --file body.json, one of them');
    const body =
      opts.data ??
      (await readFile(opts.file as string, 'utf8').catch((err: Error) => {
        throw new FleetError('INVALID_INPUT', `--file: cannot read ${opts.file}: ${err.message}`);
      }));
    try {
      JSON.parse(body);
    } catch (err) {
      throw new FleetError('INVALID_INPUT', `the body is not JSON (${(err as Error).message})`);
    }
    const deliveryId = opts.deliveryId ?? randomUUID();
    const api = clientOptions(opts);
    const signed = opts.secretEnv !== undefined;
    const headers = signed ? signedHeaders(secretFromEnv(opts.secretEnv as string), body, deliveryId) : { 'x-fleet-delivery': deliveryId };
    // The signature covers these exact bytes: the text goes as given, not re-serialized.
    const fired = await apiRequest<{ run_id: string; debounced: boolean }>({ ...api, apiKey: signed ? undefined : api.apiKey }, 'POST', `/api/triggers/${encodeURIComponent(name)}`, new RawBody(body), { 'content-type': 'application/json', ...headers });
    say(`trigger ${name}: delivery ${deliveryId} ${fired.debounced ? 'joined run' : 'started run'} ${fired.run_id}`);
    process.stdout.write(`${fired.run_id}\n`);
  });

  const workflows = program.commands.find((c) => c.name() === 'workflows') ?? program.command('workflows');
  workflows
    .command('webhook-secret')
    .description("give a template its own key for signing its api_call webhooks (instead of FLEET_WEBHOOK_SECRET)")
    .argument('<template>')
    .option('--secret-env <VAR>', 'take the secret from this environment variable')
    .option('--generate', 'generate a secret and print it once on stdout', false)
    .option('--remove', 'drop the template\'s own secret (back to FLEET_WEBHOOK_SECRET)', false)
    .action(async (template: string, opts: { secretEnv?: string; generate: boolean; remove: boolean }) => {
      if ([opts.secretEnv !== undefined, opts.generate, opts.remove].filter(Boolean).length !== 1) {
        throw new FleetError('INVALID_INPUT', 'give exactly one of --secret-env VAR, --generate or --remove');
      }
      await withClient(async (client, config) => {
        const secrets = new WebhookSecretStore(client.redis, config.queuePrefix);
        if (opts.remove) {
          say((await secrets.remove(template)) ? `template ${template}: webhooks are signed with FLEET_WEBHOOK_SECRET again` : `template ${template} had no secret of its own`);
          return;
        }
        const t = await new TemplateRegistry(client.redis, config.queuePrefix).get(template);
        const secret = opts.generate ? generateTriggerSecret() : secretFromEnv(opts.secretEnv as string);
        await secrets.set(t.name, secret);
        say(`template ${t.name}: its webhooks are signed with its own secret from now on`);
        if (opts.generate) process.stdout.write(`${secret}\n`);
      });
    });
}
