// A listing resource (ticket.add / ticket.update webhooks, tickets/get) -> the columns we keep.
import { applyMarkup, type Money } from '../money.js';
import type { ListingFields } from './listings.js';

/** A listing as Tixstock sends it: the fields read here; all of it is kept in `data`. */
export interface ListingInput {
  broker_id: string;
  event: { id: string };
  number_of_tickets_for_sale: { quantity_available: number };
  seat_details?: { first_seat?: string | null };
  display_price: Money;
  proceed_price?: Money | null;
  face_value?: Money | null;
  ticket?: object;
}

/** Our display price is Tixstock's with our markup; Tixstock's own is kept beside it. */
export function listingFields(l: ListingInput, markupPercent: string): ListingFields {
  const { currency, amount } = l.display_price;
  return {
    brokerId: l.broker_id,
    eventId: l.event.id,
    quantity: l.number_of_tickets_for_sale.quantity_available,
    firstSeat: l.seat_details?.first_seat ?? null,
    displayPrice: { currency, amount: applyMarkup(amount, markupPercent) },
    tixstockDisplayPrice: { currency, amount },
    proceedPrice: l.proceed_price ?? null,
    faceValue: l.face_value ?? null,
    seatDetails: l.seat_details ?? null,
    ticket: l.ticket ?? null,
    data: l,
  };
}
