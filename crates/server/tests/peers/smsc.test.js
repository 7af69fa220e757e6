// The SMSC script against the same package's client, before any server of ours talks to it:
// node --test crates/server/tests/peers/
'use strict';

const assert = require('node:assert/strict');
const {spawn} = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const test = require('node:test');
const smpp = require('smpp');

// The SMSC as a child process, its stdout as a queue of parsed lines.
function startSmsc() {
    const child = spawn(process.execPath, [path.join(__dirname, 'smsc.js')], {
        stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = [];
    const waiters = [];
    readline.createInterface({input: child.stdout}).on('line', (line) => {
        lines.push(JSON.parse(line));
        for (const w of waiters.splice(0)) {
            w();
        }
    });
    // The first line not taken yet for which `match` holds; it is taken.
    const taken = new Set();
    async function next(match, what) {
        const deadline = Date.now() + 5000;
        for (;;) {
            const at = lines.findIndex((line, i) => !taken.has(i) && match(line));
            if (at >= 0) {
                taken.add(at);
                return lines[at];
            }
            assert.ok(Date.now() < deadline, `SMSC never printed ${what}; got ${JSON.stringify(lines)}`);
            await new Promise((resolve) => {
                waiters.push(resolve);
                setTimeout(resolve, 100);
            });
        }
    }
    return {child, next, command: (c) => child.stdin.write(JSON.stringify(c) + '\n')};
}

function connect(port) {
    return new Promise((resolve) => {
        const session = smpp.connect({host: '127.0.0.1', port}, () => resolve(session));
    });
}

function call(session, command, options) {
    return new Promise((resolve) => session[command](options, resolve));
}

// The client's decoder would turn the octets into text; the test wants the octets.
smpp.commands.deliver_sm.params.short_message = {type: smpp.types.buffer};

test('binds, submits, receipts and mobile-originated messages', async () => {
    const smsc = startSmsc();
    try {
        const {port} = await smsc.next((l) => 'port' in l, 'its port');

        const wrong = await connect(port);
        const refused = await call(wrong, 'bind_transceiver', {system_id: 'ami', password: 'nope'});
        assert.equal(refused.command_status, smpp.ESME_RINVPASWD);
        wrong.destroy();

        const session = await connect(port);
        const deliveries = [];
        session.on('deliver_sm', (pdu) => {
            deliveries.push(pdu);
            session.send(pdu.response());
        });
        const bound = await call(session, 'bind_transceiver', {system_id: 'ami', password: 'secret'});
        assert.equal(bound.command_status, 0);
        assert.equal((await call(session, 'enquire_link', {})).command_status, 0);

        const gsmText = await call(session, 'submit_sm', {
            source_addr_ton: 1, source_addr_npi: 1, source_addr: '34600000001',
            dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '34600123456',
            registered_delivery: 1, data_coding: 0, short_message: smpp.gsmCoder.encode('Hola @ 10€', 0),
        });
        assert.equal(gsmText.command_status, 0);
        assert.equal(gsmText.message_id, '1');
        const seenGsm = await smsc.next((l) => l.event === 'submit_sm', 'a GSM submit_sm');
        assert.equal(seenGsm.message_id, gsmText.message_id);
        assert.equal(seenGsm.text, 'Hola @ 10€');
        // '@' is 0x00 and '€' the escape 0x1b 0x65 in GSM 03.38.
        assert.equal(seenGsm.short_message, '486f6c612000203130' + '1b65');
        assert.equal(seenGsm.udh, null);
        assert.equal(seenGsm.registered_delivery, 1);
        assert.deepEqual([seenGsm.source_addr_ton, seenGsm.dest_addr_ton], [1, 1]);

        await call(session, 'submit_sm', {
            source_addr: '34600000001', destination_addr: '34600123456',
            data_coding: 8, short_message: smpp.encodings.UCS2.encode('Привет'),
        });
        const seenUcs2 = await smsc.next((l) => l.event === 'submit_sm', 'a UCS-2 submit_sm');
        assert.equal(seenUcs2.data_coding, 8);
        assert.equal(seenUcs2.text, 'Привет');
        assert.equal(seenUcs2.registered_delivery, 0);

        await call(session, 'submit_sm', {
            source_addr: '34600000001', destination_addr: '34600123456', esm_class: 0x40,
            registered_delivery: 1, data_coding: 0,
            short_message: Buffer.concat([Buffer.from([5, 0, 3, 7, 3, 2]), Buffer.from('part two')]),
        });
        const seenPart = await smsc.next((l) => l.event === 'submit_sm', 'a UDH submit_sm');
        assert.deepEqual(seenPart.udh, {hex: '050003070302', ref: 7, total: 3, seq: 2});
        assert.equal(seenPart.text, 'part two');

        // Receipts for the two submits that asked for one, and none for the UCS-2 one.
        for (let i = 0; i < 2; i++) {
            await smsc.next((l) => l.event === 'receipt_resp', 'a receipt answered');
        }
        const receipts = deliveries.filter((d) => d.esm_class === 4);
        assert.equal(receipts.length, 2);
        const second = receipts.find((r) => r.receipted_message_id === gsmText.message_id);
        assert.ok(second, 'receipt of the GSM text');
        assert.equal(second.message_state, 2);
        assert.match(second.short_message.toString('ascii'), new RegExp(`^id:${gsmText.message_id} .*stat:DELIVRD`));
        assert.equal(second.source_addr, '34600123456');
        assert.equal(second.destination_addr, '34600000001');

        smsc.command({cmd: 'mo', id: 'short', from: '+34600123456', to: '+34600000001', text: 'hi there'});
        const shortResp = await smsc.next((l) => l.event === 'mo_resp', 'the MO answered');
        assert.deepEqual(shortResp, {event: 'mo_resp', id: 'short', part: 1, parts: 1, command_status: 0});
        const mo = deliveries.find((d) => d.esm_class === 0);
        assert.equal(mo.source_addr, '34600123456');
        assert.equal(mo.destination_addr, '34600000001');
        assert.equal(mo.short_message.toString('latin1'), 'hi there');

        const long = 'ñ'.repeat(70) + 'x'.repeat(100);
        smsc.command({cmd: 'mo', id: 'long', from: '+34600123456', to: '+34600000001', text: long});
        for (let i = 0; i < 2; i++) {
            const r = await smsc.next((l) => l.event === 'mo_resp', 'a long MO part answered');
            assert.equal(r.parts, 2);
        }
        const parts = deliveries.filter((d) => d.esm_class === 0x40);
        assert.equal(parts.length, 2);
        const octets = parts.map((p) => p.short_message);
        assert.deepEqual([...octets[0].subarray(0, 4)], [5, 0, 3, octets[0][3]]);
        assert.deepEqual([octets[0][4], octets[0][5], octets[1][5]], [2, 1, 2]);
        const text = octets.map((o) => smpp.gsmCoder.decode(o.subarray(6), 0)).join('');
        assert.equal(text, long);

        const unbound = await call(session, 'unbind', {});
        assert.equal(unbound.command_status, 0);
        await smsc.next((l) => l.event === 'unbind', 'the unbind');
    } finally {
        smsc.child.stdin.end();
    }
    const [code] = await new Promise((resolve) => smsc.child.on('exit', (...a) => resolve(a)));
    assert.equal(code, 0);
});

test('a transmitter and a receiver bound apart: the receipt goes to the receiver', async () => {
    const smsc = startSmsc();
    try {
        const {port} = await smsc.next((l) => 'port' in l, 'its port');
        const tx = await connect(port);
        const rx = await connect(port);
        const got = new Promise((resolve) => rx.on('deliver_sm', (pdu) => {
            rx.send(pdu.response());
            resolve(pdu);
        }));
        assert.equal((await call(tx, 'bind_transmitter', {system_id: 'ami', password: 'secret'})).command_status, 0);
        assert.equal((await call(rx, 'bind_receiver', {system_id: 'ami', password: 'secret'})).command_status, 0);
        const refused = await call(rx, 'submit_sm', {destination_addr: '1', short_message: Buffer.from('x')});
        assert.equal(refused.command_status, smpp.ESME_RINVBNDSTS);
        const sent = await call(tx, 'submit_sm', {
            destination_addr: '34600123456', registered_delivery: 1, data_coding: 0, short_message: Buffer.from('x'),
        });
        const receipt = await got;
        assert.equal(receipt.receipted_message_id, sent.message_id);
        tx.destroy();
        rx.destroy();
    } finally {
        smsc.child.stdin.end();
    }
});
