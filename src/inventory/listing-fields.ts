// A listing resource (ticket.add / ticket.update webhooks, tickets/get) -> the columns we keep.
import { applyMarkup } from '../money.js';
import type { ListingResource } from '../webhooks/v1/schemas.js';
import type { ListingFields } from './listings.js';

/** Our display price is Tixstock's with our markup; Tixstock's own is kept beside it. */
export function listingFields(l: ListingResource, markupPercent: string): ListingFields {
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
