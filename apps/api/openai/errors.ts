// Errors as OpenAI clients expect them: `{"error": {"message", "type", "param", "code"}}`. A non-retryable error says
// so with `x-should-retry: false`, since the official clients retry 409, 429 and 5xx on their own.
import { ErrorCode, type HydraError } from '../../../libs/core/index.js';

const TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'conflict_error',
  413: 'invalid_request_error',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
};

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export function openaiError(e: HydraError, status: number): { status: number; body: OpenAIErrorBody; headers: Record<string, string> } {
  const details = e.details as { model?: string; models_available?: string[]; fields?: { field: string }[]; param?: string } | undefined;
  const modelMissing = e.code === ErrorCode.Unsatisfiable && details?.model !== undefined && details.models_available !== undefined;
  const st = modelMissing ? 404 : status;
  const type = TYPE_BY_STATUS[st] ?? (st >= 500 ? 'server_error' : 'invalid_request_error');
  const param = details?.param ?? details?.fields?.[0]?.field ?? (modelMissing ? 'model' : null);
  const code = modelMissing ? 'model_not_found' : e.code === ErrorCode.Unauthorized ? 'invalid_api_key' : e.code;
  const message = modelMissing ? `The model \`${details!.model}\` does not exist or you do not have access to it.` : e.message;
  return { status: st, body: { error: { message, type, param, code } }, headers: e.retryable ? {} : { 'x-should-retry': 'false' } };
}
