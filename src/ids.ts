// One rule for the ids people read and type (order ids above all: support looks them up, links
// and mail carry them), the same for webhooks, /api and /support: 1 to 100 characters, no
// control characters (CR and LF among them) and no bidirectional controls, which make an id
// display as another one.
const UNSAFE_IN_ID = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

export const MAX_ID_LENGTH = 100;

/** What is wrong with an id, or undefined when it is one. */
export function idProblem(id: string): string | undefined {
  if (id.length === 0) return 'must not be empty';
  if (id.length > MAX_ID_LENGTH) return 'is too long';
  if (UNSAFE_IN_ID.test(id)) return 'must not contain control characters (such as CR or LF) or bidirectional controls';
  return undefined;
}

export const isId = (id: string): boolean => idProblem(id) === undefined;

/** Said where an id is refused. */
export const ID_RULE = `1 to ${MAX_ID_LENGTH} characters, without control characters (such as CR or LF) or bidirectional controls`;
