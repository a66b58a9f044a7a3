import HeraldCore

/// Who may call an operation, by its OpenAPI `operationId`: anyone, the operator, or a tenant principal
/// allowed the Direct Mail action on the resource. The tenant entries are `x-dm-action` and
/// `x-dm-resource` of OpenAPI/openapi.yaml; a contract test fails if the two differ, and an operation
/// missing here is refused (fail closed).
public enum OperationAccess: Sendable, Equatable {
    /// No credentials (health, metrics, JWKS, the token exchange itself).
    case open
    /// The operator's `HERALD_ADMIN_TOKEN`.
    case `operator`
    /// A tenant bearer token whose principal is allowed `action` on the expanded `resource` template.
    case tenant(action: String, resource: String)

    /// Every operation Herald serves.
    public static let table: [String: OperationAccess] = [
        "getHealth": .open,
        "getReadiness": .open,
        "getMetrics": .open,
        "getOpenAPI": .open,
        "getJWKS": .open,
        "createToken": .open,
        "createUser": .tenant(action: "dm:CreateUser", resource: "acs:dm:*:{tenantId}:*"),
        "listUsers": .tenant(action: "dm:ListUsers", resource: "acs:dm:*:{tenantId}:*"),
        "getUser": .tenant(action: "dm:GetUser", resource: "acs:dm:*:{tenantId}:user/{id}"),
        "updateUser": .tenant(action: "dm:UpdateUser", resource: "acs:dm:*:{tenantId}:user/{id}"),
        "deleteUser": .tenant(action: "dm:DeleteUser", resource: "acs:dm:*:{tenantId}:user/{id}"),
        "createAccessKey": .tenant(action: "dm:CreateAccessKey", resource: "acs:dm:*:{tenantId}:user/{id}"),
        "listAccessKeys": .tenant(action: "dm:ListAccessKeys", resource: "acs:dm:*:{tenantId}:user/{id}"),
        "deleteAccessKey": .tenant(action: "dm:DeleteAccessKey", resource: "acs:dm:*:{tenantId}:user/{id}"),
        "listPoliciesForUser": .tenant(action: "dm:ListPoliciesForUser", resource: "acs:dm:*:{tenantId}:user/{id}"),
        "attachPolicyToUser": .tenant(action: "dm:AttachPolicyToUser", resource: "acs:dm:*:{tenantId}:user/{id}"),
        "detachPolicyFromUser": .tenant(action: "dm:DetachPolicyFromUser", resource: "acs:dm:*:{tenantId}:user/{id}"),
        "createPolicy": .tenant(action: "dm:CreatePolicy", resource: "acs:dm:*:{tenantId}:*"),
        "listPolicies": .tenant(action: "dm:ListPolicies", resource: "acs:dm:*:{tenantId}:*"),
        "getPolicy": .tenant(action: "dm:GetPolicy", resource: "acs:dm:*:{tenantId}:policy/{policyName}"),
        "updatePolicy": .tenant(action: "dm:UpdatePolicy", resource: "acs:dm:*:{tenantId}:policy/{policyName}"),
        "deletePolicy": .tenant(action: "dm:DeletePolicy", resource: "acs:dm:*:{tenantId}:policy/{policyName}"),
        "getIpProtection": .tenant(action: "dm:GetIpProtection", resource: "acs:dm:*:{tenantId}:*"),
        "createWebhook": .tenant(action: "dm:CreateWebhook", resource: "acs:dm:*:{tenantId}:*"),
        "listWebhooks": .tenant(action: "dm:ListWebhooks", resource: "acs:dm:*:{tenantId}:*"),
        "getWebhook": .tenant(action: "dm:GetWebhook", resource: "acs:dm:*:{tenantId}:webhook/{id}"),
        "updateWebhook": .tenant(action: "dm:UpdateWebhook", resource: "acs:dm:*:{tenantId}:webhook/{id}"),
        "deleteWebhook": .tenant(action: "dm:DeleteWebhook", resource: "acs:dm:*:{tenantId}:webhook/{id}"),
        "rotateWebhookSecret": .tenant(action: "dm:RotateWebhookSecret", resource: "acs:dm:*:{tenantId}:webhook/{id}"),
        "listWebhookDeliveries": .tenant(action: "dm:ListWebhookDeliveries", resource: "acs:dm:*:{tenantId}:webhook/{id}"),
        "retryWebhookDelivery": .tenant(action: "dm:RetryWebhookDelivery", resource: "acs:dm:*:{tenantId}:webhook/{id}"),
        "testWebhook": .tenant(action: "dm:TestWebhook", resource: "acs:dm:*:{tenantId}:webhook/{id}"),
        "getStats": .tenant(action: "dm:QueryStatistics", resource: "acs:dm:*:{tenantId}:*"),
        "getAccountSettings": .tenant(action: "dm:GetAccountSettings", resource: "acs:dm:*:{tenantId}:*"),
        "updateAccountSettings": .tenant(action: "dm:UpdateAccountSettings", resource: "acs:dm:*:{tenantId}:*"),
        "getAccount": .tenant(action: "dm:GetAccount", resource: "acs:dm:*:{tenantId}:*"),
        "updateGradeCeiling": .tenant(action: "dm:UpdateGradeCeiling", resource: "acs:dm:*:{tenantId}:*"),
        "listGradeHistory": .tenant(action: "dm:ListGradeHistory", resource: "acs:dm:*:{tenantId}:*"),
        "updateIpProtection": .tenant(action: "dm:UpdateIpProtection", resource: "acs:dm:*:{tenantId}:*"),
        "checkIpProtection": .tenant(action: "dm:CheckIpProtection", resource: "acs:dm:*:{tenantId}:*"),
        "listAuditLog": .tenant(action: "dm:ListAuditLog", resource: "acs:dm:*:{tenantId}:*"),
        "createDomain": .tenant(action: "dm:CreateDomain", resource: "acs:dm:*:{tenantId}:*"),
        "listDomains": .tenant(action: "dm:QueryDomainByParam", resource: "acs:dm:*:{tenantId}:*"),
        "getDomain": .tenant(action: "dm:DescDomain", resource: "acs:dm:*:{tenantId}:domain/{id}"),
        "updateDomain": .tenant(action: "dm:UpdateDomain", resource: "acs:dm:*:{tenantId}:domain/{id}"),
        "deleteDomain": .tenant(action: "dm:DeleteDomain", resource: "acs:dm:*:{tenantId}:domain/{id}"),
        "verifyDomain": .tenant(action: "dm:CheckDomain", resource: "acs:dm:*:{tenantId}:domain/{id}"),
        "rotateDomainDkim": .tenant(action: "dm:RotateDomainDkim", resource: "acs:dm:*:{tenantId}:domain/{id}"),
        "createSender": .tenant(action: "dm:CreateMailAddress", resource: "acs:dm:*:{tenantId}:*"),
        "listSenders": .tenant(action: "dm:QueryMailAddressByParam", resource: "acs:dm:*:{tenantId}:*"),
        "getSender": .tenant(action: "dm:DescMailAddress", resource: "acs:dm:*:{tenantId}:sender/{id}"),
        "updateSender": .tenant(action: "dm:ModifyMailAddress", resource: "acs:dm:*:{tenantId}:sender/{id}"),
        "deleteSender": .tenant(action: "dm:DeleteMailAddress", resource: "acs:dm:*:{tenantId}:sender/{id}"),
        "setSenderSmtpPassword": .tenant(action: "dm:ModifyMailAddress", resource: "acs:dm:*:{tenantId}:sender/{id}"),
        "resendReplyToConfirmation": .tenant(action: "dm:CheckReplyToMailAddress", resource: "acs:dm:*:{tenantId}:sender/{id}"),
        "confirmReplyTo": .open,
        "getUnsubscribePage": .open,
        "headUnsubscribePage": .open,
        "unsubscribe": .open,
        "trackOpen": .open,
        "trackClick": .open,
        "createTag": .tenant(action: "dm:CreateTag", resource: "acs:dm:*:{tenantId}:*"),
        "listTags": .tenant(action: "dm:QueryTagByParam", resource: "acs:dm:*:{tenantId}:*"),
        "deleteTag": .tenant(action: "dm:DeleteTag", resource: "acs:dm:*:{tenantId}:tag/{id}"),
        "createTemplate": .tenant(action: "dm:CreateTemplate", resource: "acs:dm:*:{tenantId}:*"),
        "listTemplates": .tenant(action: "dm:QueryTemplateByParam", resource: "acs:dm:*:{tenantId}:*"),
        "getTemplate": .tenant(action: "dm:DescTemplate", resource: "acs:dm:*:{tenantId}:template/{id}"),
        "updateTemplate": .tenant(action: "dm:UpdateTemplate", resource: "acs:dm:*:{tenantId}:template/{id}"),
        "deleteTemplate": .tenant(action: "dm:DeleteTemplate", resource: "acs:dm:*:{tenantId}:template/{id}"),
        "submitTemplate": .tenant(action: "dm:SubmitTemplate", resource: "acs:dm:*:{tenantId}:template/{id}"),
        "previewTemplate": .tenant(action: "dm:DescTemplate", resource: "acs:dm:*:{tenantId}:template/{id}"),
        "adminListTemplates": .operator,
        "adminApproveTemplate": .operator,
        "adminRejectTemplate": .operator,
        "createList": .tenant(action: "dm:CreateReceiver", resource: "acs:dm:*:{tenantId}:*"),
        "listLists": .tenant(action: "dm:QueryReceiverByParam", resource: "acs:dm:*:{tenantId}:*"),
        "getList": .tenant(action: "dm:DescReceiver", resource: "acs:dm:*:{tenantId}:list/{id}"),
        "deleteList": .tenant(action: "dm:DeleteReceiver", resource: "acs:dm:*:{tenantId}:list/{id}"),
        "importRecipients": .tenant(action: "dm:SaveReceiverDetail", resource: "acs:dm:*:{tenantId}:list/{id}"),
        "listRecipients": .tenant(action: "dm:QueryReceiverDetail", resource: "acs:dm:*:{tenantId}:list/{id}"),
        "exportRecipients": .tenant(action: "dm:QueryReceiverDetail", resource: "acs:dm:*:{tenantId}:list/{id}"),
        "deleteRecipient": .tenant(action: "dm:DeleteReceiverDetail", resource: "acs:dm:*:{tenantId}:list/{id}"),
        "adminGetTenantLimits": .operator,
        "adminGetContentRules": .operator,
        "adminSetContentRules": .operator,
        "adminSetTenantLimits": .operator,
        "sendSingleMail": .tenant(action: "dm:SingleSendMail", resource: "acs:dm:*:{tenantId}:*"),
        "addSuppression": .tenant(action: "dm:AddSuppression", resource: "acs:dm:*:{tenantId}:*"),
        "listSuppressions": .tenant(action: "dm:QuerySuppression", resource: "acs:dm:*:{tenantId}:*"),
        "removeSuppression": .tenant(action: "dm:RemoveSuppression", resource: "acs:dm:*:{tenantId}:*"),
        "getMessage": .tenant(action: "dm:QueryMailById", resource: "acs:dm:*:{tenantId}:message/{id}"),
        "searchMessages": .tenant(action: "dm:QueryMailByParam", resource: "acs:dm:*:{tenantId}:*"),
        "listInvalidAddresses": .tenant(action: "dm:QueryInvalidAddress", resource: "acs:dm:*:{tenantId}:*"),
        "removeInvalidAddress": .tenant(action: "dm:RemoveInvalidAddress", resource: "acs:dm:*:{tenantId}:*"),
        "sendBatchMail": .tenant(action: "dm:BatchSendMail", resource: "acs:dm:*:{tenantId}:*"),
        "getTask": .tenant(action: "dm:QueryTaskByParam", resource: "acs:dm:*:{tenantId}:task/{id}"),
        "listTasks": .tenant(action: "dm:QueryTaskByParam", resource: "acs:dm:*:{tenantId}:*"),
        "adminCreateTenant": .operator,
        "adminListTenants": .operator,
        "adminListProcesses": .operator,
        "adminGetTenant": .operator,
        "adminFreezeTenant": .operator,
        "adminSetTenantGrade": .operator,
        "adminUnfreezeTenant": .operator,
        "adminBanTenant": .operator,
        "adminRotateSigningKey": .operator,
    ]

    /// For the contract test and the docs: `operationId` → (`x-dm-action`, `x-dm-resource`), `none` for
    /// open and operator operations.
    public static var contract: [String: String] {
        table.mapValues { access in
            switch access {
            case .open: "open"
            case .operator: "operator"
            case .tenant(let action, let resource): "\(action) \(resource)"
            }
        }
    }
}
