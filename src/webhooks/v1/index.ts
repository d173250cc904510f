// Registers every v1 webhook family.
import './listings.js';
import './events.js';
import './brokers.js';
import './orders.js';
import './fulfilment.js';
