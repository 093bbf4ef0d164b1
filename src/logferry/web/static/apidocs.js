/* The console's API page: Swagger UI (vendored under static/swagger-ui) over the console's
   own OpenAPI description; no request leaves the console.  "Try it out" sends the session's
   CSRF token, as the console's pages do. */
"use strict";
(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  window.SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    requestInterceptor: (req) => { req.headers["X-CSRF-Token"] = csrf; return req; },
  });
})();
