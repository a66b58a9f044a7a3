import Foundation
import HeraldCore
import HeraldStore
import Mustache

/// The console's templates (Mustache, escaped by default), its style sheet and its words in English and Chinese.
/// Plain HTML and CSS: every page works without JavaScript, and nothing is fetched from elsewhere.
enum ConsolePages {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            // The templates are ours and fixed: a failure here is a programming error the tests catch.
            try? library.register(text, named: name)
        }
        return library
    }()

    static func render(_ name: String, _ context: [String: Any]) -> String {
        library.render(context, withTemplate: name) ?? ""
    }

    /// Every template: the frame's and each part's (a name may be used once).
    static let templates: [String: String] = merged([baseTemplates, templatePages, adminPages, listPages, messagePages, webhookPages, userPages])

    /// Merges dictionaries whose keys must not repeat (a repeat is a programming error the tests catch: the first wins).
    static func merged(_ parts: [[String: String]]) -> [String: String] {
        parts.reduce(into: [:]) { all, part in all.merge(part) { first, _ in first } }
    }

    static let baseTemplates: [String: String] = [
        "layout": """
            <!doctype html>
            <html lang="{{lang}}" data-copy="{{t.copy}}" data-copied="{{t.copied}}">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{title}} · Herald</title>
            <link rel="stylesheet" href="/console/static/console.css">
            </head>
            <body>
            <a class="skip" href="#main">{{t.skip}}</a>
            <header class="top">
              <a class="brand" href="/console">Herald</a>
              {{#signedIn}}
              <nav aria-label="{{t.menu}}" class="menu">{{#menu}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{name}}</a>{{/menu}}</nav>
              <form method="post" action="/console/sign-out" class="inline">
                <input type="hidden" name="csrf" value="{{csrf}}">
                <span class="who">{{who}}</span> <button type="submit">{{t.signOut}}</button>
              </form>
              {{/signedIn}}
              <span class="langs">{{#languages}}<a href="/console/language?lang={{code}}" lang="{{code}}" hreflang="{{code}}">{{name}}</a> {{/languages}}</span>
            </header>
            <main id="main">
            {{{body}}}
            </main>
            <script src="/console/static/console.js" defer></script>
            </body>
            </html>
            """,
        "sign-in": """
            <h1>{{t.signInTitle}}</h1>
            {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
            <form method="post" action="/console/sign-in" class="card narrow">
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="accessKeyId">{{t.accessKeyId}}</label>
              <input id="accessKeyId" name="accessKeyId" autocomplete="username" required maxlength="64" value="{{accessKeyId}}">
              <label for="accessKeySecret">{{t.accessKeySecret}}</label>
              <input id="accessKeySecret" name="accessKeySecret" type="password" autocomplete="current-password" required maxlength="128">
              <button type="submit">{{t.signIn}}</button>
            </form>
            """,
        "overview": """
            <h1>{{t.overview}}</h1>
            {{#warnings.0}}
            <section class="card warnings" aria-labelledby="warnings-title">
              <h2 id="warnings-title">{{t.warnings}}</h2>
              <ul>{{#warnings}}<li>{{#href}}<a href="{{href}}">{{text}}</a>{{/href}}{{^href}}{{text}}{{/href}}</li>{{/warnings}}</ul>
            </section>
            {{/warnings.0}}
            {{#account}}
            <section class="card" aria-labelledby="account-title">
              <h2 id="account-title">{{t.account}}</h2>
              <dl class="facts">
                <div><dt>{{t.status}}</dt><dd class="status-{{status}}">{{statusText}}</dd></div>
                <div><dt>{{t.grade}}</dt><dd>{{grade}} <span class="muted">({{t.ceiling}} {{ceiling}})</span></dd></div>
              </dl>
              <label for="daily">{{t.today}}: {{dailyUsed}} / {{dailyQuota}}</label>
              <meter id="daily" min="0" max="{{dailyQuota}}" high="{{dailyHigh}}" value="{{dailyUsed}}">{{dailyUsed}} / {{dailyQuota}}</meter>
              <label for="monthly">{{t.month}}: {{monthlyUsed}} / {{monthlyQuota}}</label>
              <meter id="monthly" min="0" max="{{monthlyQuota}}" high="{{monthlyHigh}}" value="{{monthlyUsed}}">{{monthlyUsed}} / {{monthlyQuota}}</meter>
              <p class="muted">{{t.free}}: {{freeRemaining}}</p>
            </section>
            {{/account}}
            {{^account}}<section class="card"><p class="muted">{{t.notAllowed}}</p></section>{{/account}}
            <section class="card" aria-labelledby="chart-title">
              <h2 id="chart-title">{{t.last30}}</h2>
              {{#chart}}{{{chart}}}
              <p class="legend"><span class="key delivered"></span>{{t.delivered}} <span class="key bounced"></span>{{t.bounced}}
                <span class="key spam"></span>{{t.spam}} <span class="key failed"></span>{{t.failed}}</p>
              {{/chart}}
              {{^chart}}<p class="muted">{{t.notAllowed}}</p>{{/chart}}
            </section>
            {{#gradeChart}}
            <section class="card" aria-labelledby="grade-title">
              <h2 id="grade-title">{{t.gradeHistory}}</h2>
              {{{gradeChart}}}
              {{#gradeChanges.0}}<div class="scroll"><table>
                <thead><tr><th scope="col">{{t.when}}</th><th scope="col">{{t.change}}</th><th scope="col">{{t.reason}}</th></tr></thead>
                <tbody>{{#gradeChanges}}<tr><td>{{at}}</td><td>{{from}} → {{to}} <span class="muted">{{change}}</span></td><td>{{reason}}</td></tr>{{/gradeChanges}}</tbody>
              </table></div>{{/gradeChanges.0}}
            </section>
            {{/gradeChart}}
            """,
        "domains": """
            <h1>{{t.domains}}</h1>
            {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
            {{#canCreate}}
            <form method="post" action="/console/domains" class="card">
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="name">{{t.newDomain}}</label>
              <input id="name" name="name" required maxlength="253" placeholder="mail.example.com">
              <button type="submit">{{t.add}}</button>
            </form>
            {{/canCreate}}
            {{#domains}}
            <section class="card" aria-labelledby="d-{{id}}">
              <h2 id="d-{{id}}">{{name}} <span class="status-{{statusClass}}">{{statusText}}</span></h2>
              <p class="muted">{{t.checkedAt}}: {{checkedAt}}</p>
              <div class="scroll"><table class="stack">
                <thead><tr><th scope="col">{{t.purpose}}</th><th scope="col">{{t.type}}</th><th scope="col">{{t.host}}</th><th scope="col">{{t.value}}</th><th scope="col">{{t.check}}</th></tr></thead>
                <tbody>
                {{#records}}<tr><td data-label="{{t.purpose}}">{{purposeText}}</td><td data-label="{{t.type}}">{{type}}</td><td data-label="{{t.host}}"><code class="copy">{{host}}</code></td><td data-label="{{t.value}}"><code class="value copy">{{value}}</code></td><td data-label="{{t.check}}" class="check-{{check}}">{{checkText}}{{#since}} <span class="muted">{{t.since}} {{since}}</span>{{/since}}</td></tr>{{/records}}
                </tbody>
              </table></div>
              <div class="actions">
              {{#canVerify}}
              <form method="post" action="/console/domains/{{id}}/verify">
                <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">{{t.verifyNow}}</button>
              </form>
              {{/canVerify}}
              {{#canRotate}}
              <form method="post" action="/console/domains/{{id}}/dkim/rotate">
                <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="secondary">{{t.rotateDkim}}</button>
              </form>
              {{/canRotate}}
              {{#canDelete}}
              <form method="post" action="/console/domains/{{id}}/delete">
                <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" aria-label="{{t.delete}} {{name}}">{{t.delete}}</button>
              </form>
              {{/canDelete}}
              </div>
            </section>
            {{/domains}}
            {{^domains}}<p class="muted">{{t.noDomains}}</p>{{/domains}}
            """,
        "senders": """
            <h1>{{t.senders}}</h1>
            {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
            {{#canCreate}}
            <form method="post" action="/console/senders" class="card">
              <input type="hidden" name="csrf" value="{{csrf}}">
              <label for="address">{{t.senderAddress}}</label>
              <input id="address" name="address" type="email" required maxlength="254" placeholder="news@mail.example.com">
              <label for="type">{{t.senderType}}</label>
              <select id="type" name="type"><option value="trigger">{{t.trigger}}</option><option value="batch">{{t.batch}}</option></select>
              <label for="replyTo">{{t.replyTo}}</label>
              <input id="replyTo" name="replyTo" type="email" maxlength="254">
              <button type="submit">{{t.add}}</button>
            </form>
            {{/canCreate}}
            <div class="card scroll"><table>
              <thead><tr><th scope="col">{{t.senderAddress}}</th><th scope="col">{{t.senderType}}</th><th scope="col">{{t.replyTo}}</th><th scope="col">{{t.smtpPassword}}</th><th scope="col">{{t.manage}}</th></tr></thead>
              <tbody>
              {{#senders}}<tr><td><code>{{address}}</code></td><td>{{type}}</td><td>{{replyTo}} <span class="reply-{{replyToStatus}}">{{replyToText}}</span></td><td>{{smtp}}</td>
                <td>{{#canModify}}<details><summary>{{t.manage}}</summary>
                  <form method="post" action="/console/senders/{{id}}/reply-to">
                    <input type="hidden" name="csrf" value="{{csrf}}">
                    <label for="reply-{{id}}">{{t.replyTo}}</label>
                    <input id="reply-{{id}}" name="replyTo" type="email" maxlength="254" value="{{replyToValue}}">
                    <button type="submit">{{t.save}}</button>
                  </form>
                  {{#pending}}<form method="post" action="/console/senders/{{id}}/confirm"><input type="hidden" name="csrf" value="{{csrf}}">
                    <button type="submit" class="secondary">{{t.resendConfirmation}}</button></form>{{/pending}}
                  <form method="post" action="/console/senders/{{id}}/smtp-password">
                    <input type="hidden" name="csrf" value="{{csrf}}">
                    <label for="smtp-{{id}}">{{t.newSmtpPassword}}</label>
                    <input id="smtp-{{id}}" name="password" type="password" autocomplete="new-password" required minlength="10" maxlength="128">
                    <button type="submit">{{t.setPassword}}</button>
                  </form>
                </details>{{/canModify}}
                {{#canDelete}}<form method="post" action="/console/senders/{{id}}/delete">
                  <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" aria-label="{{t.delete}} {{address}}">{{t.delete}}</button>
                </form>{{/canDelete}}</td></tr>{{/senders}}
              </tbody>
            </table>
            {{^senders}}<p class="muted">{{t.noSenders}}</p>{{/senders}}
            </div>
            """,
        "message": """
            <h1>{{title}}</h1>
            <p>{{text}}</p>
            <p><a href="/console">{{t.back}}</a></p>
            """,
    ]

    /// The style sheet: readable from 360 px up, high contrast, visible focus.
    static let css = """
        :root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --accent: #0b5cad; --ok: #1a7f37; --bad: #b42318; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--ink); background: #f6f8fa; }
        .top { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; padding: .75rem 1rem; background: #fff; border-bottom: 1px solid var(--line); }
        .brand { font-weight: 700; color: var(--ink); text-decoration: none; }
        .langs a { color: var(--accent); margin-right: .75rem; } .langs { margin-left: auto; }
        .menu { order: 5; flex-basis: 100%; display: flex; gap: .25rem 1rem; overflow-x: auto; white-space: nowrap; padding-bottom: .25rem; }
        .menu a { color: var(--accent); padding: .25rem 0; } .menu a[aria-current] { color: var(--ink); font-weight: 700; text-decoration: none; }
        @media (min-width: 60rem) { .menu { flex-wrap: wrap; overflow-x: visible; } }
        main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
        h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
        h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
        .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1rem; margin-bottom: 1rem; }
        .narrow { max-width: 24rem; }
        label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
        input, select { width: 100%; padding: .5rem; font: inherit; border: 1px solid var(--muted); border-radius: 4px; }
        button { margin-top: 1rem; padding: .5rem 1rem; font: inherit; color: #fff; background: var(--accent); border: 0; border-radius: 4px; cursor: pointer; }
        .inline { display: inline; } .inline button { margin: 0 0 0 .5rem; padding: .25rem .75rem; }
        :focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
        .error { color: var(--bad); font-weight: 600; }
        .muted, .who { color: var(--muted); }
        .facts { display: flex; flex-wrap: wrap; gap: 1.5rem; margin: 0; } .facts dt { color: var(--muted); } .facts dd { margin: 0; font-size: 1.25rem; }
        .status-active { color: var(--ok); } .status-frozen, .status-banned { color: var(--bad); }
        meter { width: 100%; height: 1rem; }
        svg.chart { width: 100%; height: auto; }
        .scroll { overflow-x: auto; } table { border-collapse: collapse; width: 100%; font-size: .9rem; }
        th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        code.value { word-break: break-all; } .notice { color: var(--ok); font-weight: 600; }
        .check-ok, .status-verified, .reply-verified { color: var(--ok); } .reply-pending { color: #9a6700; }
        .check-ok, .status-verified { color: var(--ok); } .check-missing, .check-mismatch, .check-error, .status-failed { color: var(--bad); }
        button.danger { background: var(--bad); } button.secondary { color: var(--accent); background: #fff; border: 1px solid var(--accent); }
        .copy-button { margin: 0 0 0 .5rem; padding: .1rem .5rem; font-size: .8rem; }
        .actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; } .actions form { margin: 0; }
        .filters { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: 0 1rem; align-items: end; }
        .pager { display: flex; gap: 1rem; margin: .5rem 0; }
        pre { white-space: pre-wrap; word-break: break-all; background: #f6f8fa; border: 1px solid var(--line); padding: .5rem; font-size: .85rem; max-height: 20rem; overflow: auto; }
        mark { background: #ffd8a8; color: var(--ink); font-weight: 700; }
        textarea { width: 100%; min-height: 10rem; padding: .5rem; font: .9rem/1.4 ui-monospace, monospace; border: 1px solid var(--muted); border-radius: 4px; }
        input[type=checkbox], input[type=radio] { width: auto; }
        label:has(> input[type=checkbox]), label:has(> input[type=radio]) { display: inline-flex; gap: .4rem; align-items: center; margin-right: 1rem; font-weight: 400; }
        .warnings { border-color: #bf8700; } .warnings ul { margin: 0; padding-left: 1.25rem; }
        @media (max-width: 40rem) {
          table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
          table.stack thead { display: none; } table.stack tr { border-bottom: 2px solid var(--line); padding: .5rem 0; }
          table.stack td { border: 0; padding: .15rem 0; } table.stack code { word-break: break-all; } table.stack td::before { content: attr(data-label); display: block; font-size: .8rem; color: var(--muted); }
        }
        .skip { position: absolute; left: -999px; } .skip:focus { left: 1rem; top: .5rem; background: #fff; padding: .5rem; z-index: 2; }
        .axis { display: flex; justify-content: space-between; gap: .5rem; margin: .25rem 0 0; font-size: .8rem; color: var(--muted); }
        .who { max-width: 14rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; display: inline-block; vertical-align: middle; font-size: .9rem; }
        svg.grades { width: 100%; height: auto; } svg.grades polyline { fill: none; stroke: var(--accent); stroke-width: 2; }
        details summary { cursor: pointer; color: var(--accent); }
        .legend .key { display: inline-block; width: .75rem; height: .75rem; margin: 0 .25rem 0 .75rem; }
        .delivered { background: #1a7f37; fill: #1a7f37; } .bounced { background: #bf8700; fill: #bf8700; }
        .spam { background: #b42318; fill: #b42318; } .failed { background: #57606a; fill: #57606a; }
        """

    /// The one script: progressive enhancement only (every page works without it). A copy button next to each
    /// `code.copy` value, and `[data-refresh]` regions (a task's progress) fetched again every few seconds.
    static let script = """
        "use strict";
        document.querySelectorAll("code.copy").forEach(function (code) {
          if (!navigator.clipboard) { return; }
          var button = document.createElement("button");
          button.type = "button";
          button.className = "copy-button";
          button.textContent = document.documentElement.dataset.copy || "Copy";
          button.setAttribute("aria-label", (document.documentElement.dataset.copy || "Copy") + ": " + code.textContent);
          button.addEventListener("click", function () {
            navigator.clipboard.writeText(code.textContent).then(function () {
              button.textContent = document.documentElement.dataset.copied || "Copied";
            });
          });
          code.insertAdjacentElement("afterend", button);
        });
        document.querySelectorAll("[data-refresh]").forEach(function (region) {
          var seconds = parseInt(region.dataset.refresh, 10) || 3;
          var timer = setInterval(function () {
            fetch(region.dataset.src || location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
              .then(function (response) { return response.ok ? response.text() : null; })
              .then(function (text) {
                if (text === null) { return; }
                var fresh = new DOMParser().parseFromString(text, "text/html").getElementById(region.id);
                if (!fresh) { return; }
                region.innerHTML = fresh.innerHTML;
                if (fresh.dataset.refresh === undefined) { clearInterval(timer); }
              });
          }, seconds * 1000);
        });
        """

    /// Words of the console in `language` (`en` or `zh`).
    static func words(_ language: String) -> [String: String] {
        language == "zh" ? chinese : english
    }

    static let english: [String: String] = merged([baseEnglish, templateEnglish, adminEnglish, listEnglish, messageEnglish, webhookEnglish, userEnglish])
    static let chinese: [String: String] = merged([baseChinese, templateChinese, adminChinese, listChinese, messageChinese, webhookChinese, userChinese])

    /// The menu: each page's path and word.
    static let menu: [(path: String, word: String)] = [
        ("/console", "overview"), ("/console/domains", "domains"), ("/console/senders", "senders"), ("/console/templates", "templates"),
        ("/console/lists", "lists"), ("/console/tasks", "tasks"), ("/console/send-test", "sendTest"), ("/console/messages", "messages"), ("/console/suppressions", "suppressions"),
        ("/console/webhooks", "webhooks"), ("/console/statistics", "statistics"), ("/console/users", "users"), ("/console/ip-protection", "ipProtection"),
        ("/console/audit", "auditLog"),
    ]

    static let baseEnglish: [String: String] = [
        "templates": "Templates", "lists": "Lists", "tasks": "Tasks", "messages": "Messages", "suppressions": "Suppressions",
        "webhooks": "Webhooks", "statistics": "Statistics", "users": "Users", "ipProtection": "IP protection", "auditLog": "Audit log",
        "copy": "Copy", "copied": "Copied", "skip": "Skip to the content", "sendTest": "Test send", "notFound": "Not found", "notFoundText": "There is nothing here, or it is not yours to see.", "since": "since", "rotateDkim": "Rotate DKIM key", "delete": "Delete", "manage": "Manage",
        "save": "Save", "resendConfirmation": "Mail the confirmation link again", "newSmtpPassword": "New SMTP password (10+ characters)",
        "setPassword": "Set password", "deleted": "Deleted.", "saved": "Saved.", "rotated": "A new DKIM key is waiting: publish its record, then verify.",
        "passwordSet": "SMTP password set.", "confirmationSent": "A confirmation link was mailed.", "warnings": "Needs attention",
        "gradeHistory": "Credit grade over time", "most": "most in a day:", "when": "When", "change": "Change", "reason": "Reason",
        "warnPending": "Domain {domain} is not verified yet: publish its records.", "warnRecord": "Domain {domain}: {record} record {state} since {since}.",
        "warnFrozen": "Sending is frozen: {reason}", "warnBanned": "The account is banned.", "warnQuota": "{percent}% of today's quota is used.",
        "warnNoDomain": "Add and verify a sending domain to start sending.", "purpose_ownership": "ownership", "purpose_spf": "SPF",
        "purpose_dkim": "DKIM", "purpose_dmarc": "DMARC", "purpose_return_path": "return path MX", "purpose_return_path_spf": "return path SPF",
        
        "menu": "Menu", "overview": "Overview", "signOut": "Sign out", "signInTitle": "Sign in to Herald", "accessKeyId": "AccessKey ID",
        "accessKeySecret": "AccessKey secret", "signIn": "Sign in", "account": "Account", "status": "Status", "grade": "Credit grade",
        "ceiling": "ceiling", "today": "Sent today", "month": "This month", "free": "Free messages left today",
        "last30": "The last 30 days", "delivered": "Delivered", "bounced": "Bounced", "spam": "Spam rejections", "failed": "Failed",
        "notAllowed": "Your policies do not allow this.", "back": "Back to the overview", "badCredentials": "The AccessKey ID or secret is wrong.",
        "expired": "The form expired; please sign in again.", "forbidden": "Not allowed", "tooMany": "Too many attempts; wait a little.",
        "active": "Active", "frozen": "Frozen", "banned": "Banned",
        "domains": "Domains", "newDomain": "Add a sending domain", "add": "Add", "checkedAt": "Last checked", "purpose": "For",
        "type": "Type", "host": "Host", "value": "Value", "check": "Check", "verifyNow": "Verify now", "noDomains": "No domains yet.",
        "never": "never", "verified": "Verified", "pending": "Waiting for DNS", "ok": "Found", "missing": "Missing",
        "mismatch": "Different", "error": "DNS error", "created": "Added.", "checked": "Checked.", "domainCreated": "Added. Publish the records below, then verify.",
        "senders": "Sender addresses", "senderAddress": "Address", "senderType": "Type", "trigger": "Trigger (transactional)",
        "batch": "Batch (marketing)", "replyTo": "Reply-To", "smtpPassword": "SMTP password", "yes": "set", "no": "not set",
        "reply_none": "", "reply_pending": "(waiting for confirmation)", "reply_verified": "(confirmed)", "noSenders": "No sender addresses yet.",
        "createdWithReplyTo": "Added. A confirmation link was mailed to the reply-to address.",
    ]

    static let baseChinese: [String: String] = [
        "templates": "模板", "lists": "收信人列表", "tasks": "发送任务", "messages": "邮件", "suppressions": "抑制列表",
        "webhooks": "Webhook", "statistics": "统计", "users": "用户", "ipProtection": "IP 防护", "auditLog": "审计日志",
        "copy": "复制", "copied": "已复制", "skip": "跳到正文", "sendTest": "发送测试", "notFound": "未找到", "notFoundText": "这里没有内容，或您无权查看。", "since": "自", "rotateDkim": "轮换 DKIM 密钥", "delete": "删除", "manage": "管理",
        "save": "保存", "resendConfirmation": "重新发送确认链接", "newSmtpPassword": "新 SMTP 密码（至少 10 个字符）",
        "setPassword": "设置密码", "deleted": "已删除。", "saved": "已保存。", "rotated": "新的 DKIM 密钥待生效：请发布其记录，然后验证。",
        "passwordSet": "SMTP 密码已设置。", "confirmationSent": "确认链接已发送。", "warnings": "需要处理",
        "gradeHistory": "信用等级变化", "most": "单日最多：", "when": "时间", "change": "变化", "reason": "原因",
        "warnPending": "域名 {domain} 尚未验证：请发布其记录。", "warnRecord": "域名 {domain}：{record} 记录自 {since} 起{state}。",
        "warnFrozen": "发信已冻结：{reason}", "warnBanned": "账户已被封禁。", "warnQuota": "今日额度已使用 {percent}%。",
        "warnNoDomain": "添加并验证发信域名后即可开始发信。", "purpose_ownership": "所有权", "purpose_spf": "SPF",
        "purpose_dkim": "DKIM", "purpose_dmarc": "DMARC", "purpose_return_path": "退信 MX", "purpose_return_path_spf": "退信 SPF",
        "menu": "菜单", "overview": "概览", "signOut": "退出", "signInTitle": "登录 Herald", "accessKeyId": "AccessKey ID",
        "accessKeySecret": "AccessKey Secret", "signIn": "登录", "account": "账户", "status": "状态", "grade": "信用等级",
        "ceiling": "上限", "today": "今日已发送", "month": "本月", "free": "今日剩余免费额度",
        "last30": "最近 30 天", "delivered": "已送达", "bounced": "退信", "spam": "垃圾拒收", "failed": "失败",
        "notAllowed": "您的权限策略不允许此操作。", "back": "返回概览", "badCredentials": "AccessKey ID 或 Secret 错误。",
        "expired": "表单已过期，请重新登录。", "forbidden": "无权限", "tooMany": "尝试次数过多，请稍候。",
        "active": "正常", "frozen": "已冻结", "banned": "已封禁",
        "domains": "发信域名", "newDomain": "添加发信域名", "add": "添加", "checkedAt": "上次检查", "purpose": "用途",
        "type": "类型", "host": "主机记录", "value": "记录值", "check": "检查结果", "verifyNow": "立即验证", "noDomains": "还没有域名。",
        "never": "从未", "verified": "已验证", "pending": "等待 DNS", "ok": "已找到", "missing": "缺失",
        "mismatch": "不一致", "error": "DNS 错误", "created": "已添加。", "checked": "已检查。", "domainCreated": "已添加。请发布以下记录，然后验证。",
        "senders": "发信地址", "senderAddress": "地址", "senderType": "类型", "trigger": "触发（事务）", "batch": "批量（营销）",
        "replyTo": "回信地址", "smtpPassword": "SMTP 密码", "yes": "已设置", "no": "未设置", "reply_none": "",
        "reply_pending": "（等待确认）", "reply_verified": "（已确认）", "noSenders": "还没有发信地址。",
        "createdWithReplyTo": "已添加。确认链接已发送到回信地址。",
    ]

    /// The last 30 days as an SVG bar chart drawn here (no script): each day's delivered, bounced, spam-rejected
    /// and failed messages stacked, the first and last day named under it.
    static func chart(_ days: [StatsRecord], words: [String: String], label: String? = nil) -> String {
        let width = 600, height = 140, top = 4, bottom = 2
        let slot = Double(width) / Double(max(days.count, 1))
        let series: [(String, (StatsRecord) -> Int64)] = [("delivered", \.delivered), ("bounced", { $0.hardBounces }),
                                                           ("spam", \.spamRejections), ("failed", \.failed)]
        let highest = max(days.map { day in series.reduce(Int64(0)) { $0 + $1.1(day) } }.max() ?? 0, 1)
        let scale = Double(height - top - bottom) / Double(highest)
        var shapes: [String] = []
        for (index, day) in days.enumerated() {
            var y = Double(height - bottom)
            for (name, value) in series {
                let h = Double(value(day)) * scale
                guard h > 0 else { continue }
                y -= h
                shapes.append(String(format: "<rect class=\"%@\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%@ %@: %lld</title></rect>",
                                     name, Double(index) * slot + 1, y, max(slot - 2, 1), h, escape(day.key), escape(words[name] ?? name), value(day)))
            }
        }
        let first = days.first.map { escape($0.key) } ?? "", last = days.last.map { escape($0.key) } ?? ""
        return """
            <svg class="chart" viewBox="0 0 \(width) \(height)" role="img" aria-label="\(escape(label ?? words["last30"] ?? ""))" xmlns="http://www.w3.org/2000/svg">\
            <line x1="0" y1="\(height - bottom)" x2="\(width)" y2="\(height - bottom)" stroke="#d0d7de"/>\
            \(shapes.joined())\
            </svg><p class="axis"><span>\(first)</span><span>\(escape(words["most"] ?? "")) \(highest)</span><span>\(last)</span></p>
            """
    }

    /// A time as every page of the console shows it: `2026-12-07 14:05 UTC`, or with `seconds`,
    /// `2026-12-07 14:05:09 UTC` (events in order, heartbeats).
    static func time(_ date: Date, seconds: Bool = false) -> String {
        date.ISO8601Format().prefix(seconds ? 19 : 16).replacingOccurrences(of: "T", with: " ") + " UTC"
    }

    /// ``time(_:seconds:)`` of an optional date; a dash for none.
    static func time(_ date: Date?, seconds: Bool = false) -> String {
        date.map { time($0, seconds: seconds) } ?? "—"
    }

    /// `template` with each `{name}` replaced by its value.
    static func fill(_ template: String, _ values: [String: String]) -> String {
        values.reduce(template) { text, pair in text.replacingOccurrences(of: "{\(pair.key)}", with: pair.value) }
    }

    /// What needs the tenant's attention, from what the overview already loaded: the account's status and today's
    /// quota, and each domain that is not verified or whose records have stopped checking out (which and since when).
    static func warnings(account: [String: Any]?, freeze: GradeChangeRecord?, domains: [DomainRecord]?, settings: SendingDomain.Settings,
                         words: [String: String]) -> [[String: Any]] {
        var warnings: [[String: Any]] = []
        func word(_ key: String) -> String { words[key] ?? key }
        if let account {
            switch account["status"] as? String {
            case "banned": warnings.append(["text": word("warnBanned"), "href": false])
            case "frozen": warnings.append(["text": fill(word("warnFrozen"), ["reason": freeze?.reason ?? ""]), "href": false])
            default: break
            }
            if let used = account["dailyUsed"] as? Int, let quota = account["dailyQuota"] as? Int, quota > 0, used * 10 >= quota * 9 {
                warnings.append(["text": fill(word("warnQuota"), ["percent": String(min(100, used * 100 / quota))]), "href": false])
            }
        }
        guard let domains else { return warnings }
        if domains.isEmpty { warnings.append(["text": word("warnNoDomain"), "href": "/console/domains"]) }
        for domain in domains {
            if domain.status == .pending {
                warnings.append(["text": fill(word("warnPending"), ["domain": domain.name]), "href": "/console/domains"])
                continue
            }
            for (record, check) in domain.records(settings: settings) where record.isRequired {
                guard let check, check.status != .ok, check.status != .pending else { continue }
                warnings.append(["text": fill(word("warnRecord"), [
                    "domain": domain.name, "record": word("purpose_" + record.purpose.rawValue), "state": word(check.status.rawValue).lowercased(),
                    "since": check.since.map { time($0) } ?? domain.lastCheckedAt.map { time($0) } ?? "",
                ]), "href": "/console/domains"])
            }
        }
        return warnings
    }

    /// The credit grade over the last 90 days as an SVG step line drawn here: each change moves it, the current
    /// grade runs to today. Nil when there is nothing to draw.
    static func gradeChart(_ changes: [GradeChangeRecord], current: Int?, now: Date, words: [String: String]) -> String? {
        guard let current else { return nil }
        let width = 600.0, height = 120.0, left = 0.0, bottom = 4.0, top = 4.0
        let start = now.addingTimeInterval(-90 * 86_400)
        // Oldest first; the grade before the oldest change in the window is that change's `from`.
        let window = changes.filter { $0.at >= start }.sorted { $0.at < $1.at }
        var grade = window.first?.fromGrade ?? current
        func x(_ date: Date) -> Double { left + (width - left) * max(0, date.timeIntervalSince(start)) / (90 * 86_400) }
        func y(_ grade: Int) -> Double { top + (height - top - bottom) * Double(16 - grade) / 15 }
        var points = [(x(start), y(grade))]
        for change in window {
            points.append((x(change.at), y(grade)))
            grade = change.toGrade
            points.append((x(change.at), y(grade)))
        }
        points.append((x(now), y(grade)))
        let line = points.map { String(format: "%.1f,%.1f", $0.0, $0.1) }.joined(separator: " ")
        let label = escape(words["gradeHistory"] ?? "")
        return """
            <svg class="grades" viewBox="0 0 \(Int(width)) \(Int(height))" role="img" aria-label="\(label): \(grade)" xmlns="http://www.w3.org/2000/svg">\
            <line x1="\(left)" y1="\(height - bottom)" x2="\(width)" y2="\(height - bottom)" stroke="#d0d7de"/>\
            <line x1="\(left)" y1="\(y(16))" x2="\(width)" y2="\(y(16))" stroke="#eaeef2"/>\
            <polyline points="\(line)"/></svg>\
            <p class="axis"><span>\(escape(StatsDay.format(start)))</span><span>\(escape(words["grade"] ?? "")) \(grade) / 16</span>\
            <span>\(escape(StatsDay.format(now)))</span></p>
            """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
