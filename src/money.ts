// Money stays an exact decimal string end to end: Tixstock sends "100.00", "100" or 100, and
// floats would turn 59.10 x 1.125 into 66.48749999. Arithmetic is done in BigInt.
import { z } from 'zod';

interface Scaled {
  units: bigint; // value x 10^scale
  scale: number;
}

function parse(decimal: string): Scaled {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(decimal);
  if (!m) throw new Error(`not a decimal: ${decimal}`);
  const frac = m[3] ?? '';
  const units = BigInt(m[2]! + frac) * (m[1] === '-' ? -1n : 1n);
  return { units, scale: frac.length };
}

/** Canonical form of a non-negative decimal: no leading zeros, at least two decimals. */
export function normalizeAmount(decimal: string): string {
  const { units, scale } = parse(decimal);
  return format(units, scale, Math.max(2, scale));
}

function format(units: bigint, scale: number, decimals: number): string {
  const shifted = decimals >= scale ? units * 10n ** BigInt(decimals - scale) : units / 10n ** BigInt(scale - decimals);
  const negative = shifted < 0n;
  const digits = (negative ? -shifted : shifted).toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  const frac = digits.slice(digits.length - decimals);
  return `${negative ? '-' : ''}${whole}${decimals > 0 ? '.' + frac : ''}`;
}

/** amount x (1 + percent/100), rounded half up to 2 decimals. */
export function applyMarkup(amount: string, percent: string): string {
  const a = parse(amount);
  const p = parse(percent);
  // amount * (100 + percent) / 100, in units of 10^-(a.scale + p.scale + 2)
  const hundred = 100n * 10n ** BigInt(p.scale);
  const numerator = a.units * (hundred + p.units); // scale a.scale + p.scale, times 100
  const denominatorScale = a.scale + p.scale + 2; // the /100 adds two decimals
  // round to 2 decimals: value_cents = numerator / 10^(denominatorScale - 2), half up
  const divisor = 10n ** BigInt(denominatorScale - 2);
  let cents = numerator / divisor;
  const remainder = numerator % divisor;
  if (remainder * 2n >= divisor) cents += 1n;
  if (cents < 0n) cents = 0n;
  return format(cents, 2, 2);
}

/** A non-negative decimal amount, kept as an exact string such as "59.00". */
export const amount = z
  .union([z.string().trim(), z.number().finite()])
  .transform((v) => (typeof v === 'number' ? String(v) : v))
  .pipe(z.string().regex(/^\d{1,12}(\.\d{1,6})?$/, 'must be a non-negative decimal such as "59.00"'))
  .transform(normalizeAmount);

/** A price: a 3-letter currency and an exact amount. */
export const money = z.looseObject({
  currency: z
    .string()
    .trim()
    .regex(/^[A-Za-z]{3}$/, 'must be a 3-letter currency code')
    .transform((s) => s.toUpperCase()),
  amount,
});
export type Money = z.infer<typeof money>;
