import { editSegment, newExchange, type Exchange, type Segment } from '../protocols/exchange';
import { parseRequest } from '../protocols/request';
import { parseResponse } from '../protocols/response';

/** Why a ModifiedPayload cannot be used, or nothing when it was applied. */
export type ModifiedProblem = string | undefined;

function pathKey(s: Segment): string {
  return `${s.role}\u0000${s.kind}\u0000${s.path.join('\u0000')}`;
}

/** The payload must carry the same text fields in the same places: only their text may differ. */
function shapeProblem(sent: readonly Segment[], got: readonly Segment[]): ModifiedProblem {
  if (sent.length !== got.length) return `it has ${got.length} text fields where ${sent.length} were sent`;
  for (let i = 0; i < sent.length; i++) {
    if (pathKey(sent[i]) !== pathKey(got[i])) return `its text field ${i} is not where the sent one was`;
  }
  return undefined;
}

/**
 * Takes Akto's redacted request body (the whole body, in the shape that was sent) as the body to forward,
 * when it parses as the same API kind with the same stream flag, model and text fields; the segments are
 * re-extracted from it and the changed ones marked edited. Otherwise returns the problem and changes nothing.
 */
export function applyModifiedRequest(ex: Exchange, payload: string): ModifiedProblem {
  const bytes = Buffer.from(payload, 'utf8');
  const parsed = parseRequest(ex.api, bytes, 'application/json');
  if (parsed.parseError !== undefined || parsed.json === undefined) return `it is not a request body (${parsed.parseError ?? 'no JSON'})`;
  if (parsed.api !== ex.api) return `it reads as ${parsed.api}, not ${ex.api}`;
  if (parsed.stream !== ex.stream) return 'it changes the stream flag';
  if (parsed.model !== ex.model) return 'it changes the model';
  const problem = shapeProblem(ex.input, parsed.input);
  if (problem) return problem;
  parsed.input.forEach((s, i) => {
    if (s.text !== ex.input[i].text) s.edited = true;
  });
  ex.requestJson = parsed.json;
  ex.requestBody = bytes;
  ex.input = parsed.input;
  ex.maxTokens = parsed.maxTokens;
  return undefined;
}

/**
 * Applies Akto's redacted response body to the answer: it must parse into the same output fields as the
 * upstream's answer; each changed text is written back in place (editSegment), so nothing but the text of
 * those fields can change on the way to the client.
 */
export function applyModifiedResponse(ex: Exchange, payload: string): ModifiedProblem {
  try {
    JSON.parse(payload);
  } catch {
    return 'it is not JSON';
  }
  const scratch = newExchange({ id: ex.id, method: ex.method, path: ex.path, api: ex.api, dialect: ex.dialect, upstream: ex.upstream, requestJson: ex.requestJson });
  parseResponse(scratch, Buffer.from(payload, 'utf8'), {});
  const problem = shapeProblem(ex.output, scratch.output);
  if (problem) return problem;
  scratch.output.forEach((s, i) => editSegment(ex.output[i], s.text));
  return undefined;
}
