import Foundation
import HeraldCore
import HeraldStore
import Hummingbird

extension Console {
    func registerMessagePages(on router: Router<HeraldRequestContext>) {}
}

extension ConsolePages {
    static let messagePages: [String: String] = [:]
    static let messageEnglish: [String: String] = [:]
    static let messageChinese: [String: String] = [:]
}
