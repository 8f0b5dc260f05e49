// Strict parsing of numbers that arrive as text (form fields, command-line options). "12abc",
// "1e3" for an integer, "" and "NaN" are all errors that name the field; surrounding spaces are
// forgiven.

const integerPattern = /^[+-]?\d+$/;
const decimalPattern = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

export interface NumberRange {
  min: number;
  max: number;
  /** The value must be above `min` rather than at least `min` (a fraction such as a refiner's switch-at). */
  minExclusive?: boolean;
}

/** A user mistake in a named field; the HTTP layer turns it into a 400, the CLI into a usage error. */
export class InvalidFieldError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.name = 'InvalidFieldError';
    this.field = field;
  }
}

export function parseInteger(field: string, text: string, range: NumberRange): number {
  const trimmed = text.trim();
  const value = integerPattern.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(value)) {
    throw new InvalidFieldError(field, `Expected an integer for ${field} but received ${JSON.stringify(text)}`);
  }
  checkRange(field, value, range, 'an integer');
  return value;
}

export function parseDecimal(field: string, text: string, range: NumberRange): number {
  const trimmed = text.trim();
  const value = decimalPattern.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isFinite(value)) {
    throw new InvalidFieldError(field, `Expected a number for ${field} but received ${JSON.stringify(text)}`);
  }
  checkRange(field, value, range, 'a number');
  return value;
}

function checkRange(field: string, value: number, range: NumberRange, what: string): void {
  const belowMin = range.minExclusive ? value <= range.min : value < range.min;
  if (belowMin || value > range.max) {
    const allowed = range.minExclusive ? `above ${range.min} and at most ${range.max}` : `between ${range.min} and ${range.max}`;
    throw new InvalidFieldError(field, `Expected ${what} ${allowed} for ${field} but received ${value}`);
  }
}
