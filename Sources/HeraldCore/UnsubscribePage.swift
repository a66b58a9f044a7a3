import Foundation

/// The public unsubscribe pages: small, accessible HTML (no script, one form, a real button), in English or
/// Chinese by `Accept-Language`, showing the address partly masked so a forwarded link does not give it away.
public enum UnsubscribePage {
    public enum Language: String, Sendable {
        case english = "en"
        case chinese = "zh-CN"
    }

    /// The language a browser prefers among English and Chinese (by q-value, then order); English when it
    /// names neither.
    public static func language(_ acceptLanguage: String?) -> Language {
        guard let acceptLanguage else { return .english }
        var best: (language: Language, q: Double, index: Int)?
        for (index, part) in acceptLanguage.split(separator: ",").enumerated() {
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let tag = fields.first else { continue }
            let language: Language
            if tag == "zh" || tag.hasPrefix("zh-") {
                language = .chinese
            } else if tag == "en" || tag.hasPrefix("en-") {
                language = .english
            } else {
                continue
            }
            let q = fields.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            if q > 0, best == nil || q > best!.q { best = (language, q, index) }
        }
        return best?.language ?? .english
    }

    /// `a***n@example.org`: the first and (for longer names) last character of the local part, the domain whole.
    public static func mask(_ address: String) -> String {
        guard let at = address.lastIndex(of: "@") else { return String(repeating: "*", count: min(address.count, 8)) }
        let local = Array(address[..<at])
        let domain = address[at...]
        let masked: String
        switch local.count {
        case 0: masked = ""
        case 1...4: masked = String(local[0]) + String(repeating: "*", count: local.count - 1)
        default: masked = String(local[0]) + String(repeating: "*", count: min(local.count - 2, 6)) + String(local[local.count - 1])
        }
        return masked + domain
    }

    static func scopeText(_ scope: String, _ language: Language) -> String {
        switch (language, scope) {
        case (.english, "*"): return "all mail from this sender"
        case (.chinese, "*"): return "该发件方的所有邮件"
        case (.english, _) where scope.hasPrefix("tag:"): return "mail of the kind \u{201C}\(scope.dropFirst(4))\u{201D} from this sender"
        case (.chinese, _) where scope.hasPrefix("tag:"): return "该发件方“\(scope.dropFirst(4))”类的邮件"
        case (.english, _): return "this mailing list"
        case (.chinese, _): return "此邮件列表"
        }
    }

    /// The confirmation page of `GET /u/{token}`: the address and one button that POSTs the RFC 8058 body.
    public static func confirm(address: String, scope: String, language: Language) -> String {
        let masked = mask(address)
        switch language {
        case .english:
            return page(language, title: "Unsubscribe", body: """
                <p>Stop sending \(escape(scopeText(scope, language))) to <strong>\(escape(masked))</strong>?</p>
                \(form(button: "Unsubscribe"))
                <p>If you did not mean to open this page, just close it: nothing changes.</p>
                """)
        case .chinese:
            return page(language, title: "退订", body: """
                <p>不再向 <strong>\(escape(masked))</strong> 发送\(escape(scopeText(scope, language)))？</p>
                \(form(button: "确认退订"))
                <p>如果您无意打开此页面，直接关闭即可，不会有任何变化。</p>
                """)
        }
    }

    /// The answer to `POST /u/{token}` (also when it was already done).
    public static func done(address: String, scope: String, language: Language) -> String {
        let masked = mask(address)
        switch language {
        case .english:
            return page(language, title: "You are unsubscribed", body: """
                <p><strong>\(escape(masked))</strong> will no longer receive \(escape(scopeText(scope, language))).</p>
                """)
        case .chinese:
            return page(language, title: "退订成功", body: """
                <p><strong>\(escape(masked))</strong> 将不再收到\(escape(scopeText(scope, language)))。</p>
                """)
        }
    }

    /// The answer to a link that is not valid.
    public static func notFound(language: Language) -> String {
        switch language {
        case .english:
            return page(language, title: "Link not valid", body: "<p>This unsubscribe link is not valid. Please use the link from the message itself.</p>")
        case .chinese:
            return page(language, title: "链接无效", body: "<p>此退订链接无效，请使用邮件中的原始链接。</p>")
        }
    }

    static func form(button: String) -> String {
        """
        <form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">\
        <button type="submit" style="font-size: 1rem; padding: 0.6rem 1.2rem">\(escape(button))</button></form>
        """
    }

    static func page(_ language: Language, title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="\(language.rawValue)"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="robots" content="noindex"><title>\(escape(title))</title></head>
        <body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5">
        <main><h1>\(escape(title))</h1>
        \(body)
        </main></body></html>
        """
    }

    static func escape(_ text: String) -> String { MailTemplate.escapeHTML(text) }
}
