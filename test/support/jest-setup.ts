import { expectNoneInFlight } from './in-flight';

// Every suite: no proxy the test started may keep a request in flight once the test is over.
afterEach(expectNoneInFlight);
