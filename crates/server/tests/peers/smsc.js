#!/usr/bin/env node
// An SMSC built on the npm `smpp` package, for tests that need a peer this project did not
// write. It listens on 127.0.0.1 (port 0 unless --port says otherwise) and speaks JSON lines:
//
// stdout, first line: {"port": N}; then one line per event:
//   {"event":"bind", "command", "system_id", "command_status"}
//   {"event":"submit_sm", "message_id", "source_addr", "source_addr_ton", "source_addr_npi",
//    "destination_addr", "dest_addr_ton", "dest_addr_npi", "data_coding", "esm_class",
//    "registered_delivery", "short_message" (hex), "udh" (null or {"hex", "ref", "total",
//    "seq"}), "text" (decoded), "message_payload" (hex or null)}
//   {"event":"receipt_resp", "message_id", "command_status"}   the ESME answered a receipt
//   {"event":"mo_resp", "id", "part", "command_status"}        the ESME answered an MO part
//   {"event":"enquire_link"}, {"event":"unbind"}, {"event":"close"}
//   {"event":"error", "message"}
//   {"event":"exit", "submit_sm", "receipts", "mo"} on SIGTERM, SIGINT or end of stdin
//
// stdin, one JSON command per line:
//   {"cmd":"mo", "id", "from", "to", "text", "long": false}  a mobile-originated deliver_sm
//     (several parts with a concatenation UDH when the text does not fit one, or when "long"
//     is true); GSM 03.38 when every character has a code there, UCS-2 otherwise
//   {"cmd":"receipts", "enabled": bool}                       receipts on or off (default on)
//
// Options: --port N, --quiet (no submit_sm lines: for load), --receipt-stat STAT (DELIVRD),
// --receipt-delay-ms N (0: the receipt follows the submit_sm_resp at once).
'use strict';

const smpp = require('smpp');

const SYSTEM_ID = 'ami';
const PASSWORD = 'secret';

const args = process.argv.slice(2);
const option = (name, fallback) => {
    const at = args.indexOf(name);
    return at >= 0 && at + 1 < args.length ? args[at + 1] : fallback;
};
const quiet = args.includes('--quiet');
const receiptStat = option('--receipt-stat', 'DELIVRD');
const receiptDelayMs = Number(option('--receipt-delay-ms', '0'));
let receiptsEnabled = true;

// The raw octets of what the ESME sent, not the library's decoding: the test checks what went
// over the wire. (Outgoing PDUs carry Buffers, which the encoder passes through untouched.)
smpp.commands.submit_sm.params.short_message = {type: smpp.types.buffer};
delete smpp.tlvs.message_payload.filter;

const MESSAGE_STATE = {DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8};

const counters = {submit_sm: 0, receipts: 0, mo: 0};
let nextMessageId = 1;
const sessions = new Set();

function emit(event) {
    process.stdout.write(JSON.stringify(event) + '\n');
}

function canReceive(session) {
    return session.bound === 'bind_transceiver' || session.bound === 'bind_receiver';
}

function canTransmit(session) {
    return session.bound === 'bind_transceiver' || session.bound === 'bind_transmitter';
}

// A session that takes deliver_sm: the given one when it is a transceiver, else any receiver
// bound with the same system_id.
function receiverFor(session) {
    if (session && canReceive(session)) {
        return session;
    }
    for (const s of sessions) {
        if (canReceive(s)) {
            return s;
        }
    }
    return null;
}

// A leading user data header: the whole header and, when present, its concatenation element
// (8-bit reference 0x00 or 16-bit reference 0x08).
function parseUdh(octets) {
    if (octets.length === 0 || octets[0] + 1 > octets.length) {
        return null;
    }
    const header = octets.subarray(0, octets[0] + 1);
    const udh = {hex: header.toString('hex'), ref: null, total: null, seq: null};
    let at = 1;
    while (at + 2 <= header.length) {
        const iei = header[at];
        const len = header[at + 1];
        const data = header.subarray(at + 2, at + 2 + len);
        if (iei === 0x00 && len === 3) {
            [udh.ref, udh.total, udh.seq] = [data[0], data[1], data[2]];
        } else if (iei === 0x08 && len === 4) {
            udh.ref = data.readUInt16BE(0);
            [udh.total, udh.seq] = [data[2], data[3]];
        }
        at += 2 + len;
    }
    return udh;
}

function decodeText(octets, dataCoding) {
    if (dataCoding === 8) {
        return smpp.encodings.UCS2.decode(octets);
    }
    if (dataCoding === 3) {
        return smpp.encodings.LATIN1.decode(octets);
    }
    return smpp.gsmCoder.decode(octets, 0x00);
}

function timestamp(date) {
    const two = (n) => String(n).padStart(2, '0');
    return two(date.getUTCFullYear() % 100) + two(date.getUTCMonth() + 1) + two(date.getUTCDate()) +
        two(date.getUTCHours()) + two(date.getUTCMinutes());
}

function sendReceipt(session, submit, messageId) {
    const target = receiverFor(session);
    if (!target) {
        emit({event: 'error', message: `no receiver bound for the receipt of ${messageId}`});
        return;
    }
    const now = timestamp(new Date());
    const text = `id:${messageId} sub:001 dlvrd:001 submit date:${now} done date:${now} ` +
        `stat:${receiptStat} err:000 text:`;
    target.deliver_sm({
        source_addr_ton: submit.dest_addr_ton,
        source_addr_npi: submit.dest_addr_npi,
        source_addr: submit.destination_addr,
        dest_addr_ton: submit.source_addr_ton,
        dest_addr_npi: submit.source_addr_npi,
        destination_addr: submit.source_addr,
        esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
        data_coding: 0,
        short_message: Buffer.from(text, 'ascii'),
        receipted_message_id: messageId,
        message_state: MESSAGE_STATE[receiptStat] ?? MESSAGE_STATE.UNKNOWN,
    }, (resp) => {
        counters.receipts += 1;
        if (!quiet) {
            emit({event: 'receipt_resp', message_id: messageId, command_status: resp.command_status});
        }
    });
}

function onSubmit(session, pdu) {
    if (!canTransmit(session)) {
        session.send(pdu.response({command_status: smpp.ESME_RINVBNDSTS}));
        return;
    }
    const messageId = String(nextMessageId++);
    counters.submit_sm += 1;
    session.send(pdu.response({message_id: messageId}));
    if (!quiet) {
        const octets = pdu.short_message || Buffer.alloc(0);
        const udh = pdu.esm_class & 0x40 ? parseUdh(octets) : null;
        const body = udh ? octets.subarray(udh.hex.length / 2) : octets;
        emit({
            event: 'submit_sm',
            message_id: messageId,
            source_addr: pdu.source_addr,
            source_addr_ton: pdu.source_addr_ton,
            source_addr_npi: pdu.source_addr_npi,
            destination_addr: pdu.destination_addr,
            dest_addr_ton: pdu.dest_addr_ton,
            dest_addr_npi: pdu.dest_addr_npi,
            data_coding: pdu.data_coding,
            esm_class: pdu.esm_class,
            registered_delivery: pdu.registered_delivery,
            short_message: octets.toString('hex'),
            udh,
            text: decodeText(body, pdu.data_coding),
            message_payload: pdu.message_payload ? pdu.message_payload.toString('hex') : null,
        });
    }
    if (receiptsEnabled && (pdu.registered_delivery & 0x03) !== 0) {
        // After the response has been written: a receipt must not overtake it.
        const send = () => sendReceipt(session, pdu, messageId);
        if (receiptDelayMs > 0) {
            setTimeout(send, receiptDelayMs);
        } else {
            setImmediate(send);
        }
    }
}

function onBind(session, pdu) {
    let status = 0;
    if (session.bound) {
        status = smpp.ESME_RALYBND;
    } else if (pdu.system_id !== SYSTEM_ID || pdu.password !== PASSWORD) {
        status = smpp.ESME_RINVPASWD;
    }
    session.send(pdu.response({command_status: status, system_id: 'npm-smsc'}));
    if (status === 0) {
        session.bound = pdu.command;
    }
    emit({event: 'bind', command: pdu.command, system_id: pdu.system_id, command_status: status});
}

function acceptSession(session) {
    sessions.add(session);
    session.bound = null;
    for (const command of ['bind_transceiver', 'bind_transmitter', 'bind_receiver']) {
        session.on(command, (pdu) => onBind(session, pdu));
    }
    session.on('submit_sm', (pdu) => onSubmit(session, pdu));
    session.on('enquire_link', (pdu) => {
        session.send(pdu.response());
        if (!quiet) {
            emit({event: 'enquire_link'});
        }
    });
    session.on('unbind', (pdu) => {
        session.bound = null;
        emit({event: 'unbind'});
        session.send(pdu.response(), () => session.close());
    });
    session.on('unknown', (pdu) => session.send(pdu.response()));
    session.on('close', () => {
        sessions.delete(session);
        emit({event: 'close'});
    });
    session.on('error', (e) => emit({event: 'error', message: String(e && e.message)}));
}

// The parts of a mobile-originated text: one part without a header when it fits and `long`
// is not asked, else parts of at most 153 septets (GSM) or 67 UCS-2 units, each with an
// 8-bit-reference concatenation header.
function moParts(text, long, ref) {
    const gsm = smpp.encodings.ASCII.match(text);
    const dataCoding = gsm ? 0 : 8;
    // Units that may not be split: a GSM escape and its character, a UTF-16 surrogate pair.
    const units = [];
    for (const ch of text) {
        units.push(gsm ? smpp.gsmCoder.encode(ch, 0x00) : smpp.encodings.UCS2.encode(ch));
    }
    const whole = Buffer.concat(units);
    if (!long && whole.length <= 140 && (!gsm || whole.length <= 160)) {
        return {dataCoding, parts: [{udh: null, octets: whole}]};
    }
    const limit = gsm ? 153 : 134;
    const chunks = [];
    let current = [];
    let size = 0;
    for (const unit of units) {
        if (size + unit.length > limit) {
            chunks.push(Buffer.concat(current));
            current = [];
            size = 0;
        }
        current.push(unit);
        size += unit.length;
    }
    chunks.push(Buffer.concat(current));
    if (long && chunks.length === 1 && chunks[0].length > 1) {
        // Asked to be long but short: split in two so that the peer must reassemble.
        const half = Math.ceil(units.length / 2);
        chunks.splice(0, 1, Buffer.concat(units.slice(0, half)), Buffer.concat(units.slice(half)));
    }
    return {
        dataCoding,
        parts: chunks.map((octets, i) => ({
            udh: Buffer.from([0x05, 0x00, 0x03, ref & 0xff, chunks.length, i + 1]),
            octets,
        })),
    };
}

let nextMoRef = 1;

function sendMo(command) {
    const target = receiverFor(null);
    if (!target) {
        emit({event: 'error', message: 'no receiver bound for the mobile-originated message'});
        return;
    }
    const digits = (address) => String(address).replace(/^\+/, '');
    const {dataCoding, parts} = moParts(String(command.text), Boolean(command.long), nextMoRef++);
    parts.forEach((part, i) => {
        target.deliver_sm({
            source_addr_ton: 1,
            source_addr_npi: 1,
            source_addr: digits(command.from),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: digits(command.to),
            esm_class: part.udh ? 0x40 : 0x00,
            data_coding: dataCoding,
            short_message: part.udh ? Buffer.concat([part.udh, part.octets]) : part.octets,
        }, (resp) => {
            counters.mo += 1;
            emit({event: 'mo_resp', id: command.id ?? null, part: i + 1, parts: parts.length,
                command_status: resp.command_status});
        });
    });
}

function onCommand(line) {
    if (!line.trim()) {
        return;
    }
    let command;
    try {
        command = JSON.parse(line);
    } catch (e) {
        emit({event: 'error', message: `not JSON: ${line}`});
        return;
    }
    if (command.cmd === 'mo') {
        sendMo(command);
    } else if (command.cmd === 'receipts') {
        receiptsEnabled = Boolean(command.enabled);
    } else {
        emit({event: 'error', message: `unknown command: ${line}`});
    }
}

function exit() {
    emit({event: 'exit', ...counters});
    process.exit(0);
}

const server = smpp.createServer(acceptSession);
server.listen(Number(option('--port', '0')), '127.0.0.1', () => {
    emit({port: server.address().port});
});

let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
        onCommand(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
    }
});
// The parent holds stdin; when it goes away, so does this process.
process.stdin.on('end', exit);
process.on('SIGTERM', exit);
process.on('SIGINT', exit);
