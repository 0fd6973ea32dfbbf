import { deleteAgent, listAgents, registerAgent } from './domain/agents';
import { bodyJson, httpRoute, json, pageParams, requireCaller } from './shared/http';
import { agentIssuers } from './shared/config';
import { getRuntime } from './shared/runtime';

/** POST /agents (admin): registers an agent and returns its key once, with what its configuration needs (nothing secret). */
export const register = httpRoute('agents', getRuntime, async (event, rt) => {
  const admin = await requireCaller(event, rt, [rt.config.adminGroup]);
  const body = bodyJson(event);
  const agent = await registerAgent(rt.deps, { name: body.name, rotate: body.rotate }, admin);
  return json(201, { ...agent, setup: { tunnelUrl: rt.config.tunnelUrl, issuers: agentIssuers(rt.config) } });
});

/** GET /agents?limit=&next= (admin): a page of agents, whether each is connected, its targets. */
export const list = httpRoute('agents', getRuntime, async (event, rt) => {
  await requireCaller(event, rt, [rt.config.adminGroup]);
  return json(200, await listAgents(rt.deps, pageParams(event)));
});

/** DELETE /agents/{name} (admin): removes the agent; its key stops working and its connections are closed. */
export const remove = httpRoute('agents', getRuntime, async (event, rt) => {
  const admin = await requireCaller(event, rt, [rt.config.adminGroup]);
  await deleteAgent(rt.deps, event.pathParameters?.name ?? '', admin);
  return json(200, { deleted: event.pathParameters?.name });
});
