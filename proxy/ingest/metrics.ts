import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Why a record left the pipeline without reaching Akto. Each is counted and logged. */
export type DropReason = 'spool_full' | 'corrupt' | 'dead_letter_full' | 'dead_letter_write' | 'build_error' | 'trace_file' | 'spool_write';

/** The trace pipeline's metrics, registered on the process registry it is given. */
export class IngestMetrics {
  readonly queued: Counter;
  readonly sent: Counter;
  readonly acknowledged: Counter;
  readonly retried: Counter;
  readonly spooled: Counter;
  readonly dropped: Counter<'reason'>;
  readonly deadLettered: Counter;
  readonly truncated: Counter;
  readonly batchFailures: Counter<'reason'>;
  readonly batchDuration: Histogram<'result'>;
  readonly spoolBytes: Gauge;
  readonly memoryBytes: Gauge;
  readonly lastSuccess: Gauge;
  /** Read at scrape time, so the hot path never touches a gauge. */
  memorySource: () => number = () => 0;
  spoolSource: () => number = () => 0;

  constructor(registry: Registry) {
    const registers = [registry];
    this.queued = new Counter({ name: 'akto_ingest_records_queued_total', help: 'Trace records accepted for delivery', registers });
    this.sent = new Counter({
      name: 'akto_ingest_records_sent_total',
      help: 'Trace records delivered: Akto answered 2xx (which is not proof of storage), or the trace file wrote them',
      registers,
    });
    this.acknowledged = new Counter({
      name: 'akto_ingest_records_acknowledged_total',
      help: 'Trace records in 2xx answers whose body said {"success":true}; Akto\'s ingestData answers {"success":false} even when it stored them',
      registers,
    });
    this.retried = new Counter({ name: 'akto_ingest_records_retried_total', help: 'Trace records in batches sent again after a failure', registers });
    this.spooled = new Counter({ name: 'akto_ingest_records_spooled_total', help: 'Trace records written to the disk spool', registers });
    this.dropped = new Counter({
      name: 'akto_ingest_records_dropped_total',
      help: 'Trace records lost, by reason (spool_full, corrupt, dead_letter_full, dead_letter_write, build_error, trace_file, spool_write)',
      labelNames: ['reason'],
      registers,
    });
    this.deadLettered = new Counter({
      name: 'akto_ingest_records_dead_lettered_total',
      help: 'Trace records Akto rejected with a non-retryable 4xx, kept in the dead-letter file',
      registers,
    });
    this.truncated = new Counter({ name: 'akto_ingest_payloads_truncated_total', help: 'Payloads cut to AKTO_MAX_PAYLOAD_BYTES', registers });
    this.batchFailures = new Counter({
      name: 'akto_ingest_batch_failures_total',
      help: 'Failed POSTs to Akto by reason (network, timeout, http_408, http_429, http_500, http_422, http_5xx, auth, rejected)',
      labelNames: ['reason'],
      registers,
    });
    this.batchDuration = new Histogram({
      name: 'akto_ingest_batch_duration_seconds',
      help: 'Time of one POST /api/ingestData, by result',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const spool = (): number => this.spoolSource();
    const memory = (): number => this.memorySource();
    this.spoolBytes = new Gauge({
      name: 'akto_ingest_spool_bytes',
      help: 'Bytes of trace records in the disk spool',
      registers,
      collect() {
        this.set(spool());
      },
    });
    this.memoryBytes = new Gauge({
      name: 'akto_ingest_memory_queue_bytes',
      help: 'Bytes of trace records held in memory',
      registers,
      collect() {
        this.set(memory());
      },
    });
    this.lastSuccess = new Gauge({
      name: 'akto_ingest_last_success_timestamp_seconds',
      help: 'Unix time of the last batch Akto accepted',
      registers,
    });
  }
}
