import { MAX_TRACKED_RESULT_BYTES } from '../../../agent/mcp/held-executions';
import { trackedAnswer } from '../../../agent/mcp/kubernetes/toolset';

describe('what kubectl_request_status keeps of an approved write\'s answer', () => {
  it('keeps an answer up to MAX_TRACKED_RESULT_BYTES whole', () => {
    const object = { kind: 'ConfigMap', data: { v: 'x'.repeat(MAX_TRACKED_RESULT_BYTES - 100) } };
    expect(trackedAnswer(201, object)).toEqual({ http_status: 201, object });
  });

  it('keeps only the status of a larger answer, flagged truncated (the waiting call got it whole)', () => {
    const object = { kind: 'ConfigMap', data: { v: 'é'.repeat(MAX_TRACKED_RESULT_BYTES / 2) } };
    expect(trackedAnswer(200, object)).toEqual({ http_status: 200, truncated: true });
  });
});
