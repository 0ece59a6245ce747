import { inboundProblems } from '../protocols/inbound';
import { PolicyError, type PolicyCheck } from './load';

/** A PolicyCheck: a JSONPath of the inbound section the selector cannot read fails the load (or the reload) like a schema error. */
export const checkInboundPolicy: PolicyCheck = (policy, source) => {
  const problems = inboundProblems(policy);
  if (problems.length > 0) throw new PolicyError(source, problems);
};
