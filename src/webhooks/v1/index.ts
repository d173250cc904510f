// Tixstock webhooks v1: meta.type -> its definition, given to the registry by process.ts.
import type { WebhookTable } from '../registry.js';
import { brokerAuthenticate, brokerClosed, brokerOpen } from './brokers.js';
import { eventCancel, eventUpdate } from './events.js';
import { eticketFulfilment, mobileTicketFulfilment } from './fulfilment.js';
import { ticketHold, ticketRelease } from './holds.js';
import { ticketAdd, ticketDelete, ticketSold, ticketUpdate } from './listings.js';
import { orderUpdate } from './orders.js';

export const v1Webhooks: WebhookTable = {
  'ticket.add': ticketAdd,
  'ticket.create': ticketAdd,
  'ticket.update': ticketUpdate,
  'ticket.delete': ticketDelete,
  'ticket.hold': ticketHold,
  'ticket.release': ticketRelease,
  'ticket.sold': ticketSold,
  'event.update': eventUpdate,
  'event.cancel': eventCancel,
  'broker.authenticate': brokerAuthenticate,
  'broker.open': brokerOpen,
  'broker.closed': brokerClosed,
  'order.update': orderUpdate,
  'order.eticket_fulfilment': eticketFulfilment,
  'order.mobile_ticket_fulfilment': mobileTicketFulfilment,
};
