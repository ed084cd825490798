"use strict";
// The agent page: the same JSON API as any client, with the agent's own bearer token
// (kept in sessionStorage for this tab only).
(function () {
  const $ = (id) => document.getElementById(id);
  let agentId = null;

  function token() { return sessionStorage.getItem("hotline-agent-token") || ""; }

  async function api(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error((data.error || response.statusText) + (data.field ? " (" + data.field + ")" : ""));
    }
    return data;
  }

  function show(agent) {
    $("panel").hidden = false;
    $("name").textContent = agent.name;
    $("agent-id").textContent = agent.id;
    $("state").textContent = agent.state.replace("_", " ");
    $("reason").textContent = agent.reason ? "(" + agent.reason + ")" : "";
    $("since").textContent = Math.round(agent.time_in_state_s);
    $("call").hidden = !agent.call_sid;
    $("call-sid").textContent = agent.call_sid || "";
  }

  function fail(error) {
    $("error").hidden = false;
    $("error").textContent = String(error.message || error);
  }

  async function refresh() {
    if (!token()) { return; }
    try {
      const data = await api("GET", "/api/agents");
      if (data.agents.length !== 1) { throw new Error("use an agent's own token"); }
      agentId = data.agents[0].id;
      show(data.agents[0]);
      $("error").hidden = true;
    } catch (error) { fail(error); }
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("hotline-agent-token", $("token").value.trim());
    $("token").value = "";
    refresh();
  });

  document.querySelectorAll("button[data-action]").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!agentId) { return; }
      const action = button.dataset.action;
      let body = {};
      if (action === "login") { body = { ready: button.dataset.ready === "true" }; }
      if (action === "not_ready") { body = { reason: $("not-ready-reason").value }; }
      try {
        show(await api("POST", "/api/agents/" + encodeURIComponent(agentId) + "/" + action, body));
        $("error").hidden = true;
      } catch (error) { fail(error); }
    });
  });

  refresh();
  setInterval(refresh, 2000);
})();
