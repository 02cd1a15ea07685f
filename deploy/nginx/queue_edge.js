// The waiting room's two commonest requests answered by nginx itself (njs): a status poll
// from far behind the serving cursor, with a valid queue ticket, and, after the sell-out,
// a join the app would refuse as sold out.
//
// Such a poll needs no Redis and no database, only the event's public cursor, which
// nginx already micro-caches for everyone (/api/events/<id>/queue/cursor/). This handler
// checks the ticket's HMAC, reads the cursor through the cache, and gives the answer the
// app's lane would give (events/services/waiting_room.py: _answer_from_cursor,
// estimated_ahead, poll_after_ms, queue_answer_payload); ticketing/tests/test_queue_edge.py
// runs nginx with this file and compares the two answers field by field.
//
// A join after the sell-out is refused (409 sold_out) for nearly everyone; only a buyer
// with a pass, one held for review and one staff blocked get another answer. nginx asks
// the app once per buyer (events/api/queue_lane.py: join_refusal_answer, keyed by a
// digest of the bearer token, which the app verifies) and keeps the answer in its cache
// for up to QUEUE_EDGE_SECONDS, never past the token's expiry, under the cursor's
// join_stamp, which changes with every admission, block or review hold: a copy is never
// older than the state it was read from by more than the cursor's age. The refusal's
// text comes from the app in each language; nginx picks the buyer's as Django would.
//
// Everything else goes to the app unchanged (the @queue location): any other method, no
// ticket, a ticket that fails any check (forged, edited, other event, expired, due for
// its exact re-check), a bearer token naming another buyer, a ticket at or near the
// cursor, a pre-opening number after the shuffle, a cursor that is missing or stale; a
// join with a body, before the sell-out, after sales close, with a token the app does
// not take, from a buyer the app would answer otherwise, with a language header this
// file does not read exactly as Django. The edge can only ever say "still waiting", "sold
// out" or "sold out, join the waiting list": a pass is only ever given by the app.
//
// Presence (the rule that drops waiters who went silent): the app writes into every
// ticket it hands out when it last saw the buyer ("seen"); the edge answers only while
// that is less than the cursor's edge_seconds ago, so every buyer who keeps polling is
// seen by the app at least that often, well inside QUEUE_SILENT_SECONDS. A buyer whose
// joins the edge refuses is seen by the app's answer to nginx's question, as often.
//
// The key: QUEUE_TICKET_KEY from nginx's environment (the main config's "env" directive
// lets it through), the same setting the app signs with. Without it the edge answers
// no poll and every poll goes to the app (joins need no key).

import crypto from 'crypto';

const MAC_BYTES = 16;
// nginx's copy of the cursor lives a second (max-age=1) and is refreshed in the background
// while the old copy is served: older than this, the app answers (and the news of a pass
// is never more than this late).
const PULSE_MAX_AGE_MS = 2000;
const NEAR_FRONT_SECONDS = 2; // closer than this to the cursor: the app's exact step

// The HMAC key as the app derives it from the setting (events/queue_tickets.py), once
// when nginx loads this file.
const KEY = (function derivedKey() {
    const secret = process.env.QUEUE_TICKET_KEY;
    if (!secret) {
        return null;
    }
    return crypto.createHash('sha256').update('queue-ticket:' + secret).digest();
})();

function toApp(r) {
    r.internalRedirect('@queue');
}

// Compares in a time that does not depend on where the texts differ (as the app's
// hmac.compare_digest), so a forger learns nothing from how fast a guess is refused.
function sameText(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return diff === 0;
}

// v2.<event>.<user>.<arrival>.<preopen>.<issued>.<seen>.<mac> (events/queue_tickets.py);
// group 1 is what the MAC covers.
const TICKET =
    /^(v2\.([0-9]{1,18})\.([0-9]{1,18})\.([0-9]{1,18})\.([01])\.([0-9]{1,18})\.([0-9]{1,18}))\.([A-Za-z0-9_-]{22})$/;

function parseTicket(text, key) {
    const m = TICKET.exec(text.trim());
    if (m === null) {
        return null;
    }
    const expected = crypto.createHmac('sha256', key).update(m[1]).digest().slice(0, MAC_BYTES);
    if (!sameText(expected.toString('base64url'), m[8])) {
        return null;
    }
    return {
        event: Number(m[2]),
        user: Number(m[3]),
        arrival: Number(m[4]),
        preopen: m[5] === '1',
        issued: Number(m[6]),
        seen: Number(m[7]),
    };
}

// The user id a bearer token claims (its signature is the app's business: the edge reads
// nothing for that user, it only refuses to answer a ticket sent with another's token).
function claimedUser(header, claim) {
    if (!header.startsWith('Bearer ')) {
        return null;
    }
    try {
        const payload = header.slice(7).trim().split('.')[1];
        const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
        const user = Number(claims[claim]);
        return Number.isInteger(user) ? user : null;
    } catch (e) {
        return null;
    }
}

// events/services/waiting_room.py: estimated_ahead
function estimatedAhead(arrival, cursor) {
    const beyond = Math.max(1, cursor.last_arrival - cursor.serving);
    const share = Math.min(1, cursor.waiting / beyond);
    const ahead = pyRound((arrival - cursor.serving - 1) * share);
    return Math.max(0, Math.min(ahead, cursor.waiting - 1));
}

// Python's round(): halves to even.
function pyRound(x) {
    const floor = Math.floor(x);
    const diff = x - floor;
    if (diff > 0.5) {
        return floor + 1;
    }
    if (diff < 0.5) {
        return floor;
    }
    return floor % 2 === 0 ? floor : floor + 1;
}

// events/services/waiting_room.py: poll_after_ms for a "waiting" answer
function pollAfterMs(ahead, eta, edge, salesOpenMs, nowMs) {
    let interval = edge.poll_min_ms + Math.max(ahead, 0) * edge.poll_ms_per_person_ahead;
    if (eta !== null) {
        interval = Math.min(interval, Math.floor((eta * 1000) / 4));
    }
    if (nowMs < salesOpenMs) {
        interval = Math.max(interval, Math.floor((salesOpenMs - nowMs) / 4));
    }
    return Math.trunc(Math.min(Math.max(interval, edge.poll_min_ms), edge.poll_max_ms));
}

function answer(ticketText, ticket, cursor, nowMs) {
    const edge = cursor.edge;
    const soldOut = cursor.sold_out;
    let ahead = null;
    let eta = null;
    let pollAfter = edge.poll_max_ms;
    if (!soldOut) {
        ahead = estimatedAhead(ticket.arrival, cursor);
        eta = cursor.admitted_per_second > 0 ? Math.ceil(ahead / cursor.admitted_per_second) : null;
        pollAfter = pollAfterMs(ahead, eta, edge, edge.sales_open_at_ms, nowMs);
    }
    return {
        state: soldOut ? 'sold_out' : 'waiting',
        position: soldOut ? null : ahead + 1,
        ahead: ahead,
        eta_seconds: eta,
        pass_expires_at: null,
        poll_after_ms: pollAfter,
        sales_open_at: cursor.sales_open_at,
        estimated: true,
        queue_ticket: ticketText,
        as_of: cursor.updated_at,
        paused: !soldOut && cursor.paused,
    };
}

// The JSON answer of a GET subrequest (through nginx's cache), or null.
async function fetchJson(r, uri) {
    try {
        const reply = await r.subrequest(uri, { method: 'GET' });
        return reply.status === 200 ? JSON.parse(reply.responseText) : null;
    } catch (e) {
        return null;
    }
}

function setAppHeaders(r) {
    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['Cache-Control'] = 'private, no-store';
    r.headersOut['X-Content-Type-Options'] = 'nosniff';
    r.headersOut['Referrer-Policy'] = 'same-origin';
    r.headersOut['Cross-Origin-Opener-Policy'] = 'same-origin';
    r.headersOut['X-Frame-Options'] = 'DENY';
    r.headersOut['X-Queue-Edge'] = '1';
}

async function handle(r) {
    return r.method === 'POST' ? join(r) : poll(r);
}

async function poll(r) {
    const text = r.headersIn['X-Queue-Ticket'];
    if (r.method !== 'GET' || !text || KEY === null) {
        return toApp(r);
    }
    const ticket = parseTicket(text, KEY);
    if (ticket === null || String(ticket.event) !== r.variables.queue_event) {
        return toApp(r);
    }
    const cursor = await fetchJson(r, '/__edge/cursor/' + ticket.event);
    if (cursor === null) {
        return toApp(r);
    }
    const edge = cursor.edge;
    const nowMs = Date.now();
    const nowS = Math.floor(nowMs / 1000);
    const authorization = r.headersIn.Authorization;
    const nearFront = cursor.serving + Math.ceil(cursor.admitted_per_second * NEAR_FRONT_SECONDS);
    if (
        !edge ||
        nowS - ticket.issued >= edge.ticket_recheck_seconds ||
        nowS - ticket.seen >= edge.edge_seconds ||
        nowS < ticket.seen - 60 ||
        !(nowMs - edge.as_of_ms <= PULSE_MAX_AGE_MS) ||
        ticket.arrival <= nearFront ||
        (ticket.preopen && cursor.shuffled) ||
        (authorization !== undefined && claimedUser(authorization, edge.user_id_claim) !== ticket.user)
    ) {
        return toApp(r);
    }
    const body = JSON.stringify(answer(text.trim(), ticket, cursor, nowMs));
    setAppHeaders(r);
    r.return(200, body);
}

// One item of Accept-Language as Django's parse_accept_lang_header reads it:
// a tag (or "*") and an optional weight.
const ACCEPT_ITEM = /^([a-z]{1,8}(?:-[a-z0-9]{1,8})*|\*)(?:\s*;\s*q=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?))?$/;

// The language Django's LocaleMiddleware would pick (django.utils.translation:
// get_language_from_request, no language in the path), or null where this reading
// might differ from Django's (an unknown language cookie, an odd header): the app then
// answers.
function requestLanguage(r, edge) {
    const supported = edge.languages;
    const cookie = r.variables['cookie_' + edge.language_cookie];
    if (cookie) {
        return supported.includes(cookie) ? cookie : null;
    }
    const header = (r.headersIn['Accept-Language'] || '').toLowerCase().trim();
    if (header.length > 200) {
        return null;
    }
    const items = [];
    if (header !== '') {
        const parts = header.split(',');
        for (let i = 0; i < parts.length; i++) {
            const m = ACCEPT_ITEM.exec(parts[i].trim());
            if (m === null) {
                return null;
            }
            items.push({ tag: m[1], q: m[2] === undefined ? 1 : Number(m[2]), order: i });
        }
    }
    // Highest weight first; equal weights keep their order (Python's sort is stable).
    items.sort((a, b) => b.q - a.q || a.order - b.order);
    for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (item.tag === '*') {
            break;
        }
        if (supported.includes(item.tag)) {
            return item.tag;
        }
        const generic = item.tag.split('-')[0];
        if (supported.includes(generic)) {
            return generic;
        }
    }
    return edge.language_code;
}

// A join without a body after the sell-out, refused here when the app says this buyer's
// join would be refused (see the top of this file).
async function join(r) {
    const authorization = r.headersIn.Authorization;
    const length = r.headersIn['Content-Length'];
    if (
        !authorization ||
        !authorization.startsWith('Bearer ') ||
        (length !== undefined && length !== '0') ||
        r.headersIn['Transfer-Encoding'] !== undefined
    ) {
        return toApp(r);
    }
    const event = r.variables.queue_event;
    const cursor = await fetchJson(r, '/__edge/cursor/' + event);
    if (cursor === null || !cursor.sold_out || !cursor.edge || !cursor.edge.join_stamp) {
        return toApp(r);
    }
    const edge = cursor.edge;
    const nowMs = Date.now();
    if (!(nowMs - edge.as_of_ms <= PULSE_MAX_AGE_MS) || !(nowMs < edge.sales_close_at_ms)) {
        return toApp(r);
    }
    const language = requestLanguage(r, edge);
    if (language === null) {
        return toApp(r);
    }
    // The token itself never becomes part of a cache key (nor lands on disk): its digest.
    const digest = crypto.createHash('sha256').update(authorization.slice(7).trim()).digest('hex');
    const check = await fetchJson(r, '/__edge/join-refusal/' + event + '/' + edge.join_stamp + '/' + digest);
    if (check === null || check.refusable !== true || typeof check.refusals[language] !== 'string') {
        return toApp(r);
    }
    setAppHeaders(r);
    r.headersOut.Vary = 'Accept-Language';
    r.headersOut['Content-Language'] = language;
    r.return(409, check.refusals[language]);
}

export default { handle };
