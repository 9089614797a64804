/**
 * One error shape for every HTTP answer that is not a success:
 * `{"error": {"code", "message", "issues"?: [{path, message}]}}`, with the status from the error code.
 */
import { FleetError, isRedisOutOfMemory, redisOutOfMemoryError, toFleetError, type FleetErrorCode, type ValidationIssue } from '@agentfleet/core';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';

/**
 * The HTTP status of every error code: a total table, so a code added to `FLEET_ERROR_CODES` without
 * a status here fails to compile (as tRPC's `getHTTPStatusCode`).
 *
 * Codes that describe how a run or one of its phases failed (a timeout, a lost worker, a rejected
 * approval, …) are recorded in the run, never the answer to a request: one reaching a handler is a
 * bug, hence 500. Provider failures are an upstream's (502).
 */
export const HTTP_STATUS: Readonly<Record<FleetErrorCode, number>> = {
  INVALID_WORKFLOW: 400,
  INVALID_INPUT: 400,
  UNKNOWN_ROLE: 400,
  UNKNOWN_TOOL: 400,
  TOOL_INPUT_INVALID: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  TOOL_NOT_ALLOWED: 403,
  WORKFLOW_NOT_FOUND: 404,
  RUN_NOT_FOUND: 404,
  NOT_FOUND: 404,
  SCHEDULE_NOT_FOUND: 404,
  ROLE_NOT_FOUND: 404,
  CONFLICT: 409,
  INVALID_STATE: 409,
  EVENT_REJECTED: 422,
  TOO_MANY_STREAMS: 429,
  INTERNAL: 500,
  PHASE_TIMEOUT: 500,
  PHASE_WORKER_LOST: 500,
  PHASE_CANCELLED: 500,
  RETRIES_EXHAUSTED: 500,
  OUTPUT_INVALID: 500,
  MAX_ITERATIONS: 500,
  MAX_TURNS_EXCEEDED: 500,
  APPROVAL_REJECTED: 500,
  APPROVAL_TIMEOUT: 500,
  CHILD_RUN_FAILED: 500,
  STATE_SCHEMA_VIOLATION: 500,
  BUDGET_EXCEEDED: 500,
  END_ACTION_FAILED: 500,
  TOOL_FAILED: 500,
  PROVIDER_RATE_LIMITED: 502,
  PROVIDER_OVERLOADED: 502,
  PROVIDER_CONNECTION: 502,
  PROVIDER_AUTH: 502,
  PROVIDER_BAD_REQUEST: 502,
  REDIS_UNAVAILABLE: 503,
  REDIS_OUT_OF_MEMORY: 503,
};

/** The HTTP status an error with `code` is answered with ({@link HTTP_STATUS}). */
export function statusOf(code: FleetErrorCode): number {
  return HTTP_STATUS[code];
}

/** The JSON body of an error answer (also the OpenAPI `Error` schema). */
export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().describe('stable error code, e.g. INVALID_INPUT, RUN_NOT_FOUND, CONFLICT'),
      message: z.string(),
      issues: z.array(z.object({ path: z.string(), message: z.string() })).optional().describe('one entry per bad field'),
      active_run_id: z.string().optional().describe('409 on conversation_id: the run that holds the conversation'),
    }),
  })
  .meta({ id: 'Error' });

/** ioredis errors that mean "Redis is not answering". */
const REDIS_DOWN = /Stream isn't writeable|enableOfflineQueue|Command timed out|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|MaxRetriesPerRequest|Reached the max retries/;

export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'MaxRetriesPerRequestError' || REDIS_DOWN.test(err.message);
}

/** Turn anything thrown into a {@link FleetError} fit for an HTTP answer. */
export function toHttpError(err: unknown): FleetError {
  if (err instanceof FleetError) return err;
  if (isRedisOutOfMemory(err)) return redisOutOfMemoryError(err);
  if (isRedisUnavailable(err)) return new FleetError('REDIS_UNAVAILABLE', 'Redis is not answering; try again shortly', { cause: err });
  return toFleetError(err);
}

/** Fastify error handler: validation errors → 400 naming each field; FleetError → its status. */
export function errorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = err.validationContext ?? 'body';
    const issues: ValidationIssue[] = err.validation.map((v) => ({
      path: [where, ...v.instancePath.split('/').filter(Boolean)].join('.'),
      message: v.message ?? v.keyword,
    }));
    void reply.code(400).send({ error: { code: 'INVALID_INPUT', message: issues.map((i) => `${i.path}: ${i.message}`).join('\n'), issues } });
    return;
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 && !(err instanceof FleetError)) {
    // Fastify's own client errors: bad JSON, body too large, unsupported media type.
    void reply.code(err.statusCode).send({ error: { code: 'INVALID_INPUT', message: err.message } });
    return;
  }
  const fleet = toHttpError(err);
  const status = statusOf(fleet.code);
  if (status >= 500 && status !== 503) request.log.error({ err }, 'request failed');
  const issues = (fleet.details?.issues as ValidationIssue[] | undefined) ?? undefined;
  const active = fleet.details?.active_run_id as string | undefined;
  void reply.code(status).send({
    error: { code: fleet.code, message: fleet.message, ...(issues ? { issues } : {}), ...(active ? { active_run_id: active } : {}) },
  });
}
